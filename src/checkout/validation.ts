import { loadSellableSkus, openness, SUPPORTED_INVENTORY_MODES, type SellableSku } from '../catalog/index.ts';
import { MAX_LINE_QUANTITY } from '../cart/index.ts';
import { unknownBuyers } from '../buyers/index.ts';
import { getLeader } from '../leaders/index.ts';
import { flashSaleAvailable, stockLevels, type StockLevel } from '../inventory/index.ts';
import { checkCheckoutLimits } from '../orders/index.ts';
import type { OrdersPlatform as Platform } from '../orders/index.ts';
import { AppError, assert } from '../platform/errors.ts';

/** Most lines in one order. */
export const MAX_CHECKOUT_LINES = 50;
export const MAX_REMARK_LENGTH = 200;

export interface CheckoutRequest {
  leaderId: number;
  items: { activitySkuId: number; quantity: number }[];
  remark?: string | undefined;
  /** The buyer's coupons to use; each must apply, or the checkout is refused. */
  couponIds?: number[] | undefined;
  /** Points to spend, up to their share of the payable. */
  points?: number | undefined;
  handover?: 'pickup' | 'delivery' | undefined;
  region?: string | undefined;
}

/** What validation found: the activity SKUs, and the stock levels it checked (reused by pricing). */
export interface Checked {
  skus: Map<number, SellableSku>;
  levels: Map<number, StockLevel>;
}

/** Everything a request can get wrong, checked before anything is written. */
export async function validateCheckout(platform: Platform, buyerId: number, request: CheckoutRequest): Promise<Checked> {
  if (request.items.length === 0 || request.items.length > MAX_CHECKOUT_LINES) {
    throw new AppError('invalid_field', { field: 'items', message: `An order has 1 to ${MAX_CHECKOUT_LINES} lines.` });
  }
  const seen = new Set<number>();
  request.items.forEach((item, i) => {
    if (!Number.isSafeInteger(item.quantity) || item.quantity < 1 || item.quantity > MAX_LINE_QUANTITY) {
      throw new AppError('invalid_field', { field: `items.${i}.quantity`, message: `quantity must be a whole number from 1 to ${MAX_LINE_QUANTITY}.` });
    }
    if (seen.has(item.activitySkuId)) throw new AppError('duplicate_line', { field: `items.${i}.activitySkuId` });
    seen.add(item.activitySkuId);
  });
  const [unknownBuyer, skus, leader] = await Promise.all([unknownBuyers(platform.db, [buyerId]), loadSellableSkus(platform.db, [...seen]), getLeader(platform.db, request.leaderId)]);
  // A token may name a buyer the platform never registered: such a buyer orders nothing.
  if (unknownBuyer.length > 0) throw new AppError('buyer_not_found');
  if (!leader) throw new AppError('leader_not_found', { field: 'leaderId' });
  const now_ms = platform.now();
  request.items.forEach((item, i) => {
    const sku = skus.get(item.activitySkuId);
    if (!sku) throw new AppError('activity_sku_not_found', { field: `items.${i}.activitySkuId` });
    const open = openness(sku.activity, now_ms);
    if (open !== 'open') {
      throw new AppError('activity_not_open', { field: `items.${i}.activitySkuId`, message: open === 'not_started' ? 'The group-buy has not started yet.' : 'The group-buy has closed for orders.' });
    }
    assert(SUPPORTED_INVENTORY_MODES.includes(sku.activity.inventoryMode), () => `activity ${sku.activityId} has an unsupported inventory mode`);
    assert(!(sku.activity.inventoryMode === 'on_payment' && sku.activityPriceUnits !== null), 'stock-linked prices are not offered on on-payment activities');
  });
  // Early, without the buyer's lock: a buyer at their limits is refused before anything is reserved.
  // The order's transaction checks again, exactly.
  await checkCheckoutLimits(platform.shards.forBuyer(buyerId), buyerId, request.items, skus, platform.buyerLimits);
  // A line that is visibly sold out is refused before anything is written: in a flash sale most
  // buyers arrive after the last unit. (A hold of the buyer's own may still cover it.) Hot lines
  // ask Redis, whose count is the gate; the database's lags behind it.
  const hot = request.items.filter((item) => isFlashSaleLine(platform, skus.get(item.activitySkuId)!));
  const [levels, hotAvailable] = await Promise.all([
    stockLevels(platform.db, request.items.filter((item) => skus.get(item.activitySkuId)!.activity.inventoryMode !== 'on_add_to_cart' && !hot.includes(item)).map((item) => item.activitySkuId)),
    hot.length > 0 && platform.flashSale
      ? flashSaleAvailable(platform.flashSale, hot.map((item) => ({ activityId: skus.get(item.activitySkuId)!.activityId, activitySkuId: item.activitySkuId })))
      : new Map<number, number>(),
  ]);
  request.items.forEach((item, i) => {
    const available = hotAvailable.get(item.activitySkuId) ?? levels.get(item.activitySkuId)?.available;
    if (available !== undefined && available < item.quantity) throw new AppError('insufficient_stock', { field: `items.${i}.quantity`, details: { activitySkuId: item.activitySkuId } });
  });
  return { skus, levels };
}

/** 秒杀: a line of a hot activity is reserved through Redis when the platform has one. */
export function isFlashSaleLine(platform: Platform, sku: SellableSku): boolean {
  return platform.flashSale !== undefined && sku.activity.hot && sku.activity.inventoryMode === 'on_order' && sku.activityPriceUnits === null;
}
