import { loadSellableSkus } from '../catalog/index.ts';
import { recordEvent } from '../events/index.ts';
import type { OrdersPlatform } from './platform.ts';
import { transaction } from '../platform/db/retry.ts';
import { affected, ignoreDuplicates } from '../platform/db/sql.ts';
import { AppError } from '../platform/errors.ts';
import { multiplyFen, sumFen } from '../platform/money.ts';
import { ORDER_PRICE_PROTECTED, type OrderPriceProtected } from './events.ts';
import { getOrder } from './lifecycle.ts';

/** 价保: a paid line may claim a later price drop of its activity SKU within this many days. */
export const PRICE_PROTECTION_DAYS = 7;
const DAY_MS = 86_400_000;

export type NotEligibleReason = 'not_paid' | 'window_closed' | 'no_price_drop';

export interface PriceProtectionClaim {
  orderNo: string;
  lineNo: number;
  paidUnitPrice_fen: number;
  currentUnitPrice_fen: number;
  quantity: number;
  amount_fen: number;
}

/**
 * Claims the difference between what the buyer paid for a line's goods (after every discount,
 * without shipping) and what the same units cost now, once per line; so never more than was
 * paid for them. The claim and its event for the payment centre's refund path are written in one
 * transaction on the order's shard; a line refund takes off the 价保 paid out on the line, and
 * a payout after a refund of its line is not made.
 */
export async function claimPriceProtection(platform: OrdersPlatform, buyerId: number, orderNo: string, lineNo: number): Promise<PriceProtectionClaim> {
  const order = await getOrder(platform, orderNo, buyerId);
  const line = order.lines.find((l) => l.lineNo === lineNo);
  if (!line) throw new AppError('not_found', { message: `Order ${orderNo} has no line ${lineNo}.` });
  const now_ms = platform.now();
  const refuse = (reason: NotEligibleReason) => new AppError('price_protection_not_eligible', { details: { reason } });
  if (order.status !== 'PAID' || order.paid_at_ms === null) throw refuse('not_paid');
  if (now_ms - order.paid_at_ms > PRICE_PROTECTION_DAYS * DAY_MS) throw refuse('window_closed');
  // What the buyer paid for the goods (discounts included, shipping not) against what the same
  // units cost now, each price segment at today's price for its kind (never above what it was).
  const current = (await loadSellableSkus(platform.db, [line.activitySkuId])).get(line.activitySkuId);
  if (!current) throw refuse('no_price_drop');
  const paidForGoods_fen = line.payable_fen - line.shipping_fen;
  const costsNow_fen = sumFen(
    line.segments.map((segment) => {
      const today_fen = segment.basis === 'list' ? current.listPrice_fen : current.price_fen;
      return multiplyFen(Math.min(today_fen, segment.unitPrice_fen), segment.quantity);
    }),
  );
  if (costsNow_fen >= paidForGoods_fen) throw refuse('no_price_drop');

  const claim: PriceProtectionClaim = {
    orderNo,
    lineNo,
    paidUnitPrice_fen: line.unitPrice_fen,
    currentUnitPrice_fen: current.price_fen,
    quantity: line.quantity,
    amount_fen: paidForGoods_fen - costsNow_fen,
  };
  const shard = platform.shards.forOrderNo(orderNo)!;
  await transaction(shard, async (trx) => {
    const inserted = await trx
      .insertInto('price_protection_claims')
      .values({
        order_no: orderNo,
        line_no: lineNo,
        buyer_id: buyerId,
        activity_sku_id: line.activitySkuId,
        paid_unit_price_fen: claim.paidUnitPrice_fen,
        current_unit_price_fen: claim.currentUnitPrice_fen,
        quantity: claim.quantity,
        amount_fen: claim.amount_fen,
        claimed_at_ms: now_ms,
      })
      .$call(ignoreDuplicates(trx))
      .executeTakeFirst();
    if (affected(inserted) === 0) throw new AppError('price_protection_already_claimed');
    const event: OrderPriceProtected = { orderNo, buyerId, lineNo, amount_fen: claim.amount_fen, paymentNo: order.paymentNo };
    await recordEvent(trx, { type: ORDER_PRICE_PROTECTED, aggregateId: orderNo, payload: event }, now_ms);
  });
  platform.wake();
  return claim;
}
