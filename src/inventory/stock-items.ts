import type { Transaction } from 'kysely';
import type { DB } from '../platform/db/schema.ts';
import { affected } from '../platform/db/sql.ts';
/** What the inventory files share: reservation states, stock levels, items, lock order. */

/**
 * reserved → confirmed | released | transferred; confirmed → returned (sold units given back).
 * A cart hold (加购减库存) is a reservation under the hold's key; `transferred` means its units
 * moved into an order's reservation. `pending` (秒杀): the units were taken in Redis, or are about
 * to be, and have not yet moved in the stock row: pending → reserved when the order is placed,
 * → confirmed at payment, → released (nothing to move back) when given up. `returning` (秒杀): sold
 * units of a SKU Redis serves went back to available in the stock row, and Redis has not yet
 * counted them; → returned once it has (flash-sale/returns.ts).
 */
export const RESERVATION_STATES = ['pending', 'reserved', 'confirmed', 'released', 'returning', 'returned', 'transferred'] as const;
export type ReservationState = (typeof RESERVATION_STATES)[number];

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
export async function moveReservation(trx: Transaction<DB>, orderNo: string, activitySkuId: number, from: ReservationState, to: ReservationState, now_ms: number): Promise<boolean> {
  const won = await trx
    .updateTable('stock_reservations')
    .set({ state: to, updated_at_ms: now_ms })
    .where('order_no', '=', orderNo)
    .where('activity_sku_id', '=', activitySkuId)
    .where('state', '=', from)
    .executeTakeFirst();
  return affected(won) === 1;
}
