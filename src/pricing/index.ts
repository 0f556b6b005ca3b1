import { assert } from '../platform/errors.ts';
import { CURRENCY, multiplyFen, sumFen } from '../platform/money.ts';

/**
 * The pricing engine: pure, no I/O, the one place amounts are computed on the server.
 * Today an item's price is its activity price × quantity; promotions, coupons, points and
 * shipping plug in here and allocate to lines, so a line's payable stays its refundable.
 */
export interface PricingLine {
  activitySkuId: number;
  merchantId: number;
  quantity: number;
  listPrice_fen: number;
  activityPrice_fen: number;
}

export interface PricedLine {
  activitySkuId: number;
  merchantId: number;
  quantity: number;
  unitPrice_fen: number;
  subtotal_fen: number;
  discount_fen: number;
  payable_fen: number;
}

export interface PricedOrder {
  currency: typeof CURRENCY;
  lines: PricedLine[];
  itemsTotal_fen: number;
  discountTotal_fen: number;
  shipping_fen: number;
  payable_fen: number;
}

export function priceOrder(lines: readonly PricingLine[]): PricedOrder {
  const priced = lines.map((line): PricedLine => {
    assert(Number.isSafeInteger(line.quantity) && line.quantity > 0, 'priced quantity must be a positive integer');
    const subtotal_fen = multiplyFen(line.activityPrice_fen, line.quantity);
    return {
      activitySkuId: line.activitySkuId,
      merchantId: line.merchantId,
      quantity: line.quantity,
      unitPrice_fen: line.activityPrice_fen,
      subtotal_fen,
      discount_fen: 0,
      payable_fen: subtotal_fen,
    };
  });
  const itemsTotal_fen = sumFen(priced.map((l) => l.subtotal_fen));
  const discountTotal_fen = sumFen(priced.map((l) => l.discount_fen));
  const shipping_fen = 0; // self-pickup at the leader's, the group-buy default
  const payable_fen = sumFen(priced.map((l) => l.payable_fen)) + shipping_fen;
  assert(payable_fen === itemsTotal_fen - discountTotal_fen + shipping_fen, 'order payable must equal items − discounts + shipping');
  return { currency: CURRENCY, lines: priced, itemsTotal_fen, discountTotal_fen, shipping_fen, payable_fen };
}
