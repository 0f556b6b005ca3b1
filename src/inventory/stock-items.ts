/** What the inventory files share: reservation states, stock levels, items, lock order. */
import { compareAndSet } from '../platform/db/compare-and-set.ts';
import { RESERVATION_STATE_TABLE, RESERVATION_STATES, type ReservationState } from './reservation-state.ts';
import type { InventoryTransaction } from './tables.ts';
export { RESERVATION_STATES, type ReservationState };

export interface StockLevel {
  activitySkuId: number;
  total: number;
  available: number;
  reserved: number;
  sold: number;
  /** Units reserved or sold at the activity price (stock-linked prices). */
  activityPriceTaken: number;
}

export interface StockItem {
  activitySkuId: number;
  quantity: number;
  /** The cart hold this item's units come from first (on-add-to-cart SKUs). */
  fromHold?: string;
  /**
   * Stock-linked price: at most `limit` units of the SKU ever go at the activity price, and the
   * checkout priced `units` of this item that way. If that many are no longer left the
   * reservation fails with `price_changed`.
   */
  activityPrice?: { limit: number; units: number };
}

/** SKUs are always locked in ascending id order, so two checkouts never deadlock. */
export function inLockOrder<T extends { activitySkuId: number }>(items: readonly T[]): T[] {
  return [...items].sort((a, b) => a.activitySkuId - b.activitySkuId);
}

/**
 * A reservation row's state changes by compare-and-set from the state it was read in: false
 * when another writer moved it first (the caller then leaves its units alone).
 */
export function moveReservation(
  trx: InventoryTransaction,
  orderNo: string,
  activitySkuId: number,
  from: ReservationState,
  to: ReservationState,
  now_ms: number,
  changes: { quantity?: number; activity_price_units?: number } = {},
): Promise<boolean> {
  return compareAndSet(trx, RESERVATION_STATE_TABLE, { order_no: orderNo, activity_sku_id: activitySkuId }, { state: from }, to, { ...changes, updated_at_ms: now_ms });
}
