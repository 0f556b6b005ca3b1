
import { releaseFlashSaleReservations, type FlashSale } from './flash-sale/index.ts';
import { releaseReservation } from './reservations.ts';
import type { InventoryDb } from './tables.ts';

/**
 * What of the inventory's can be left stuck by a crash, for the consistency pass: stock still held
 * for an order, long after its checkout. Whether that order ended (never placed, or cancelled) is
 * the orders module's to say; giving the units back is this module's.
 */

/** Where a walk over held reservations got to: (created_at_ms, order_no) of the last one read. */
export interface ReservationPosition {
  created_at_ms: number;
  orderNo: string;
}

/**
 * Orders with stock reserved (or pending in a flash sale) since before `heldBefore_ms`, one row per
 * reservation, in (created_at_ms, order number) order after `after`. Cart holds (keys H…) are not
 * orders and expire by their own job.
 */
export async function heldReservations(
  db: InventoryDb,
  query: { heldBefore_ms: number; after?: ReservationPosition | undefined; limit: number },
): Promise<{ orderNo: string; created_at_ms: number }[]> {
  let select = db
    .selectFrom('stock_reservations')
    .select(['order_no', 'created_at_ms'])
    .where('state', 'in', ['reserved', 'pending'])
    .where('created_at_ms', '<', query.heldBefore_ms)
    .where('order_no', 'not like', 'H%');
  const { after } = query;
  if (after !== undefined) {
    select = select.where((eb) =>
      eb.or([eb('created_at_ms', '>', after.created_at_ms), eb.and([eb('created_at_ms', '=', after.created_at_ms), eb('order_no', '>', after.orderNo)])]),
    );
  }
  const rows = await select.orderBy('created_at_ms').orderBy('order_no').limit(query.limit).execute();
  return rows.map((r) => ({ orderNo: r.order_no, created_at_ms: r.created_at_ms }));
}

/**
 * Gives back the stock a cancelled order still holds, as the order.cancelled subscriber does it:
 * Redis first for a flash sale's units. The units released from the stock row.
 */
export async function releaseHeldStock(flashSale: FlashSale | undefined, db: InventoryDb, orderNo: string, now_ms: number): Promise<number> {
  if (flashSale) await releaseFlashSaleReservations(flashSale, db, orderNo);
  return releaseReservation(db, orderNo, now_ms);
}
