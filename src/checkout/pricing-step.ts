import { memberLevelOf } from '../buyers/index.ts';
import type { SellableSku } from '../catalog/index.ts';
import { couponsToUse } from '../coupons/index.ts';
import { stockLevels, type StockLevel } from '../inventory/index.ts';
import { POINTS_POLICY, pointsAccount } from '../points/index.ts';
import { MAX_ORDER_PAYABLE_FEN, MAX_SHIPPING_FEE_FEN, priceCart, PricingError, ShippingFeeTooHigh, type Handover, type PricedCart } from '../pricing/index.ts';
import { livePromotions, shippingRulesOf } from '../promotions/index.ts';
import type { OrdersPlatform } from '../orders/index.ts';
import { AppError } from '../platform/errors.ts';

export interface PricingChoices {
  couponIds?: number[] | undefined;
  points?: number | undefined;
  handover?: Handover | undefined;
  region?: string | undefined;
}

/**
 * Checkout's price step, also the cart preview's: loads what the engine needs (member
 * level, live promotions, shipping rules, the chosen coupons, the points balance) and prices.
 * A chosen coupon the engine does not apply is refused with its reason, never dropped silently.
 */
export async function priceForBuyer(
  platform: OrdersPlatform,
  buyerId: number,
  lines: readonly { sku: SellableSku; quantity: number }[],
  choices: PricingChoices,
  orderNo: string | undefined,
  /** Stock levels the caller already read; only the missing ones are read here. */
  knownLevels: ReadonlyMap<number, StockLevel> = new Map(),
): Promise<{ priced: PricedCart; activityPrice: Map<number, { limit: number; units: number }> }> {
  const now_ms = platform.now();
  const merchantIds = [...new Set(lines.map((l) => l.sku.merchantId))];
  const couponIds = choices.couponIds ?? [];
  const stockLinked = lines.filter((l) => l.sku.activityPriceUnits !== null).map((l) => l.sku.activitySkuId);
  const unread = stockLinked.filter((id) => !knownLevels.has(id));
  const [memberLevel, promotions, shippingRules, coupons, account, stock] = await Promise.all([
    memberLevelOf(platform.db, buyerId),
    livePromotions(platform.db, merchantIds, now_ms),
    shippingRulesOf(platform.db, merchantIds),
    couponsToUse(platform.db, buyerId, couponIds, orderNo, now_ms),
    choices.points ? pointsAccount(platform.db, buyerId) : undefined,
    stockLevels(platform.db, unread),
  ]);
  for (const [id, level] of knownLevels) if (!stock.has(id)) stock.set(id, level);
  // Stock-linked prices are priced from this snapshot; the reservation confirms it or refuses.
  const activityPrice = new Map<number, { limit: number; units: number }>();
  for (const { sku, quantity } of lines) {
    if (sku.activityPriceUnits === null) continue;
    const left = Math.max(0, sku.activityPriceUnits - (stock.get(sku.activitySkuId)?.activityPriceTaken ?? 0));
    activityPrice.set(sku.activitySkuId, { limit: sku.activityPriceUnits, units: Math.min(quantity, left) });
  }
  if (choices.points && account && account.available < choices.points) {
    throw new AppError('insufficient_points', { field: 'points', details: { available: account.available } });
  }
  let priced: PricedCart;
  try {
    priced = priceCart({
      lines: lines.map(({ sku, quantity }) => ({
        activitySkuId: sku.activitySkuId,
        skuId: sku.skuId,
        merchantId: sku.merchantId,
        category: sku.category,
        quantity,
        listPrice_fen: sku.listPrice_fen,
        activityPrice_fen: sku.price_fen,
        weight_g: sku.weight_g,
        ...(activityPrice.has(sku.activitySkuId) && { activityPriceUnitsLeft: activityPrice.get(sku.activitySkuId)!.units }),
      })),
      buyer: { memberLevel, region: choices.region ?? '', handover: choices.handover ?? 'pickup' },
      promotions,
      coupons,
      ...(choices.points && account && { points: { toUse: choices.points, available: account.available }, pointsPolicy: POINTS_POLICY }),
      shippingRules,
      now_ms,
    });
  } catch (error) {
    if (error instanceof ShippingFeeTooHigh) {
      throw new AppError('shipping_fee_exceeds_limit', { field: 'handover', details: { merchantId: error.merchantId, limit: 'MAX_SHIPPING_FEE_FEN', max_fen: MAX_SHIPPING_FEE_FEN } });
    }
    if (error instanceof PricingError) throw new AppError('invalid_field', { field: 'handover', message: error.message });
    throw error;
  }
  for (const refused of priced.notApplied.filter((n) => n.kind === 'coupon')) {
    const index = couponIds.findIndex((id) => String(id) === refused.id);
    throw new AppError('coupon_not_applicable', { field: `couponIds.${index}`, details: { reason: refused.reason } });
  }
  if (priced.payable_fen > MAX_ORDER_PAYABLE_FEN) {
    throw new AppError('order_payable_exceeds_limit', { field: 'items', details: { limit: 'MAX_ORDER_PAYABLE_FEN', max_fen: MAX_ORDER_PAYABLE_FEN, payable_fen: priced.payable_fen } });
  }
  return { priced, activityPrice };
}
