import { sql, type Transaction } from 'kysely';
import { dialectOf } from '../platform/db/database.ts';

import { affected } from '../platform/db/sql.ts';
import { AppError, assert } from '../platform/errors.ts';
import { moveReservation, type ReservationState, type StockItem } from './stock-items.ts';
import type { InventoryTransaction } from './tables.ts';

/** Cart holds live in the reservation table under a key of their own. */
export function holdKeyOf(buyerId: number, activitySkuId: number): string {
  const key = `H${buyerId}-${activitySkuId}`;
  assert(key.length <= 32, 'hold key too long');
  return key;
}

async function holdRow(trx: InventoryTransaction, holdKey: string, activitySkuId: number) {
  let query = trx
    .selectFrom('stock_reservations')
    .select(['quantity', 'state'])
    .where('order_no', '=', holdKey)
    .where('activity_sku_id', '=', activitySkuId);
  if (dialectOf(trx) !== 'sqlite') query = query.forUpdate();
  return query.executeTakeFirst();
}

/**
 * A hold's row changes by the reservation's compare-and-set from the state read under its lock
 * (FOR UPDATE; SQLite's writer is alone), so it cannot lose: losing would be a broken lock.
 */
async function moveLockedHold(
  trx: InventoryTransaction,
  holdKey: string,
  activitySkuId: number,
  from: ReservationState,
  change: { to: ReservationState; quantity?: number; activity_price_units?: number },
  now_ms: number,
): Promise<void> {
  const { to, ...columns } = change;
  const moved = await moveReservation(trx, holdKey, activitySkuId, from, to, now_ms, columns);
  assert(moved, () => `hold ${holdKey}/${activitySkuId} changed under its lock`);
}

/** When the buyer first held this SKU (the hold's row is made once and kept, released or not); undefined if never. */
export async function holdCreatedAt(trx: InventoryTransaction, holdKey: string, activitySkuId: number): Promise<number | undefined> {
  const row = await trx.selectFrom('stock_reservations').select('created_at_ms').where('order_no', '=', holdKey).where('activity_sku_id', '=', activitySkuId).executeTakeFirst();
  return row === undefined ? undefined : Number(row.created_at_ms);
}

/**
 * Moves up to the item's quantity from the cart hold into the order, inside the reservation's
 * transaction: the units stay reserved throughout, so no other buyer can take them between.
 * Returns how many moved.
 */
export async function takeFromHold(trx: InventoryTransaction, holdKey: string, item: StockItem, now_ms: number): Promise<number> {
  const hold = await holdRow(trx, holdKey, item.activitySkuId);
  if (!hold || hold.state !== 'reserved') return 0;
  const moved = Math.min(hold.quantity, item.quantity);
  const left = hold.quantity - moved;
  await moveLockedHold(trx, holdKey, item.activitySkuId, 'reserved', left === 0 ? { to: 'transferred' } : { to: 'reserved', quantity: left }, now_ms);
  return moved;
}

/**
 * A checkout that took units from this hold failed: they go back to it while the hold is still
 * the buyer's (reserved, or wholly taken by that checkout); a hold that expired or was let go
 * takes nothing back. The units stay reserved either way; returns how many went back.
 */
export async function giveBackToHold(trx: InventoryTransaction, holdKey: string, activitySkuId: number, quantity: number, now_ms: number): Promise<number> {
  const hold = await holdRow(trx, holdKey, activitySkuId);
  if (!hold || (hold.state !== 'reserved' && hold.state !== 'transferred')) return 0;
  const held = hold.state === 'reserved' ? hold.quantity : 0;
  await moveLockedHold(trx, holdKey, activitySkuId, hold.state, { to: 'reserved', quantity: held + quantity }, now_ms);
  return quantity;
}

/**
 * 加购减库存: sets how many units a cart hold keeps reserved, taking the difference from
 * available stock or giving it back. `insufficient_stock` when there is not enough; 0 releases.
 */
export async function setHold(trx: InventoryTransaction, holdKey: string, activitySkuId: number, quantity: number, now_ms: number): Promise<void> {
  assert(Number.isSafeInteger(quantity) && quantity >= 0, 'a hold is a whole number of units');
  {
    const hold = await holdRow(trx, holdKey, activitySkuId);
    const current = hold?.state === 'reserved' ? hold.quantity : 0;
    const delta = quantity - current;
    if (delta === 0) {
      // A hold whose units all went into an order ends here too, so nothing can give units back to it later.
      if (quantity === 0 && hold?.state === 'transferred') {
        await moveLockedHold(trx, holdKey, activitySkuId, 'transferred', { to: 'released' }, now_ms);
      }
      return;
    }
    const moved = await trx
      .updateTable('stock')
      .set({ available: sql`available - ${delta}`, reserved: sql`reserved + ${delta}`, updated_at_ms: now_ms })
      .where('activity_sku_id', '=', activitySkuId)
      .where(delta > 0 ? sql<boolean>`available >= ${delta}` : sql<boolean>`reserved >= ${-delta}`)
      .executeTakeFirst();
    if (affected(moved) === 0) {
      if (delta > 0) throw new AppError('insufficient_stock', { field: 'quantity', details: { activitySkuId } });
      assert(false, () => `hold ${holdKey} exceeds the reserved stock`);
    }
    if (!hold) {
      await trx
        .insertInto('stock_reservations')
        .values({ order_no: holdKey, activity_sku_id: activitySkuId, quantity, state: 'reserved', created_at_ms: now_ms, updated_at_ms: now_ms })
        .execute();
      return;
    }
    await moveLockedHold(trx, holdKey, activitySkuId, hold.state, quantity === 0 ? { to: 'released' } : { to: 'reserved', quantity, activity_price_units: 0 }, now_ms);
  }
}
