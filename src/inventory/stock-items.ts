import type { Transaction } from 'kysely';
import { compareAndSet, type StateTable } from '../platform/db/compare-and-set.ts';
import type { DB } from '../platform/db/schema.ts';
import { statesOf } from '../platform/state-machine.ts';
/** What the inventory files share: reservation states, stock levels, items, lock order. */

/**
 * A reservation row's states, as data. A cart hold (加购减库存) is a reservation under the hold's
 * key; `transferred` means its units moved into an order's reservation, and they may come back to
 * it (a failed checkout). `pending` (秒杀): the units were taken in Redis, or are about to be, and
 * have not yet moved in the stock row: pending → reserved when the order is placed, → confirmed at
 * payment, → released (nothing to move back) when given up. `released` → reserved: a retry of the
 * same order (or the buyer's hold) takes the units again. Sold units given back pass through
 * `returning` (the stock row has them back; Redis, on a SKU it serves, has not yet counted them —
 * flash-sale/returns.ts) to `returned`. A hold's quantity changes in place (reserved → reserved).
 */
export const RESERVATION_TRANSITIONS = {
  pending: ['reserved', 'confirmed', 'released'],
  reserved: ['confirmed', 'released', 'transferred', 'reserved'],
  transferred: ['reserved', 'released'],
  released: ['reserved'],
  confirmed: ['returning'],
  returning: ['returned'],
  returned: [],
} as const satisfies Record<string, readonly string[]>;
export type ReservationState = keyof typeof RESERVATION_TRANSITIONS;
export const RESERVATION_STATES = statesOf<ReservationState>(RESERVATION_TRANSITIONS);

/** stock_reservations as the compare-and-set sees it: no version column, the state guards each write. */
export const RESERVATION_STATE_TABLE: StateTable<ReservationState> = {
  table: 'stock_reservations',
  what: 'stock reservation',
  stateColumn: 'state',
  transitions: RESERVATION_TRANSITIONS,
  versioned: false,
};

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
  trx: Transaction<DB>,
  orderNo: string,
  activitySkuId: number,
  from: ReservationState,
  to: ReservationState,
  now_ms: number,
  changes: { quantity?: number; activity_price_units?: number } = {},
): Promise<boolean> {
  return compareAndSet(trx, RESERVATION_STATE_TABLE, { order_no: orderNo, activity_sku_id: activitySkuId }, { state: from }, to, { ...changes, updated_at_ms: now_ms });
}
