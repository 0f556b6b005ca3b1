import { sql, type Transaction } from 'kysely';
import { dialectOf } from '../platform/db/database.ts';
import { transaction } from '../platform/db/retry.ts';

import { affected } from '../platform/db/sql.ts';
import { AppError, assert } from '../platform/errors.ts';
import { giveBackToHold, takeFromHold } from './holds.ts';
import { inLockOrder, moveReservation, type ReservationState, type StockItem, type StockLevel } from './stock-items.ts';
import type { InventoryDb, InventoryTransaction } from './tables.ts';

export { RESERVATION_STATES, type ReservationState, type StockItem, type StockLevel } from './stock-items.ts';
export { holdCreatedAt, holdKeyOf, setHold } from './holds.ts';
export { deductOnPayment, returnSoldStock } from './sold.ts';
export { adjustStock, MAX_ADJUSTMENTS_LISTED, stockAdjustments, type StockAdjustment } from './adjustments.ts';

/**
 * The stock ledger (库存) per activity SKU: available + reserved + sold = total, always —
 * asserted here on every read and by a CHECK constraint on every write. A reservation is a
 * row keyed by (order number, activity SKU): reserved → confirmed | released, so a retry
 * never reserves twice and a release or confirm happens once.
 */
export function assertLedgerBalances(s: StockLevel): void {
  assert(s.available >= 0 && s.reserved >= 0 && s.sold >= 0, () => `stock of ${s.activitySkuId} has a negative bucket`);
  assert(s.available + s.reserved + s.sold === s.total, () => `stock ledger of ${s.activitySkuId} does not balance`);
}

export async function createStock(trx: InventoryTransaction, activitySkuId: number, total: number, now_ms: number): Promise<void> {
  assert(Number.isSafeInteger(total) && total >= 0, 'stock total must be a non-negative integer');
  await trx
    .insertInto('stock')
    .values({ activity_sku_id: activitySkuId, total, available: total, reserved: 0, sold: 0, updated_at_ms: now_ms })
    .execute();
}

export async function stockLevels(db: InventoryDb, activitySkuIds: readonly number[]): Promise<Map<number, StockLevel>> {
  if (activitySkuIds.length === 0) return new Map();
  const rows = await db
    .selectFrom('stock')
    .select(['activity_sku_id', 'total', 'available', 'reserved', 'sold', 'activity_price_taken'])
    .where('activity_sku_id', 'in', [...activitySkuIds])
    .execute();
  const levels = rows.map((r) => ({
    activitySkuId: r.activity_sku_id,
    total: r.total,
    available: r.available,
    reserved: r.reserved,
    sold: r.sold,
    activityPriceTaken: r.activity_price_taken,
  }));
  levels.forEach(assertLedgerBalances);
  return new Map(levels.map((l) => [l.activitySkuId, l]));
}

/**
 * 库存锁定 for one order, all or nothing. A conditional update (available >= quantity)
 * makes overselling impossible. Repeating it for the same order reserves nothing twice:
 * each reservation row is claimed (inserted, or moved released → reserved by compare-and-set)
 * before its stock moves. Fails with `insufficient_stock` (details.activitySkuId) and
 * changes nothing. `firstAttempt` says the order number is brand new, so there is no earlier
 * reservation to look for. `alsoInTransaction` lets the caller add writes that must commit
 * with the reservation (checkout schedules the job that undoes an orphaned one).
 */
export async function reserveStock(
  db: InventoryDb,
  orderNo: string,
  items: readonly StockItem[],
  now_ms: number,
  options: { firstAttempt: boolean; alsoInTransaction?: (trx: InventoryTransaction) => Promise<void> },
): Promise<void> {
  for (const item of items) assert(Number.isSafeInteger(item.quantity) && item.quantity > 0, 'reserve a positive quantity');
  const batch = dialectOf(db) !== 'sqlite';
  await transaction(db, async (trx) => {
    const earlier = options.firstAttempt
      ? []
      : await trx.selectFrom('stock_reservations').select(['activity_sku_id', 'state']).where('order_no', '=', orderNo).execute();
    const earlierState = new Map(earlier.map((r) => [r.activity_sku_id, r.state as ReservationState]));
    const toTake: { item: StockItem; reclaimed: boolean }[] = [];
    for (const item of inLockOrder(items)) {
      const state = earlierState.get(item.activitySkuId);
      if (state === 'reserved' || state === 'confirmed' || state === 'pending') continue;
      if (state === 'released') {
        const reclaimed = await moveReservation(trx, orderNo, item.activitySkuId, 'released', 'reserved', now_ms, { quantity: item.quantity, activity_price_units: 0 });
        if (!reclaimed) continue; // another attempt reclaimed it first
      }
      toTake.push({ item, reclaimed: state === 'released' });
    }
    // Every stock row of the cart is locked (and read) in id order before anything moves, once, so
    // holds and the batch below never take locks out of order; the batch checks what this read.
    const locked = batch && toTake.length > 1 ? await lockStockRows(trx, toTake.map((t) => t.item.activitySkuId)) : undefined;
    // Held units move from the buyer's cart hold first; only what the hold lacks comes from available.
    const rest: typeof toTake = [];
    for (const t of toTake) {
      const moved = t.item.fromHold ? await takeFromHold(trx, t.item.fromHold, t.item, now_ms) : 0;
      if (moved === 0) rest.push(t);
      else await takeStockRow(trx, orderNo, t.item, t.reclaimed, now_ms, moved, t.item.fromHold);
    }
    // Taking from a hold moves only the hold's own stock row, which is not among the rest: what was
    // read under the lock still holds for them.
    if (locked && rest.length > 1) await takeStockInBatch(trx, orderNo, rest, locked, now_ms);
    else for (const { item, reclaimed } of rest) await takeStockRow(trx, orderNo, item, reclaimed, now_ms);
    await options.alsoInTransaction?.(trx);
  });
}

/** One SKU: claim its reservation row, then take the stock (beyond `alreadyHeld` units) by conditional update. */
async function takeStockRow(trx: InventoryTransaction, orderNo: string, item: StockItem, reclaimed: boolean, now_ms: number, alreadyHeld = 0, holdKey?: string): Promise<void> {
  const fromHold = alreadyHeld > 0 && holdKey ? { hold_key: holdKey, from_hold: alreadyHeld } : { hold_key: null, from_hold: 0 };
  if (!reclaimed) {
    // The primary key refuses a second attempt racing this one for the same order.
    await trx
      .insertInto('stock_reservations')
      .values({ order_no: orderNo, activity_sku_id: item.activitySkuId, quantity: item.quantity, state: 'reserved', ...fromHold, created_at_ms: now_ms, updated_at_ms: now_ms })
      .execute();
  } else {
    await trx.updateTable('stock_reservations').set(fromHold).where('order_no', '=', orderNo).where('activity_sku_id', '=', item.activitySkuId).execute();
  }
  const needed = item.quantity - alreadyHeld;
  if (needed > 0) {
    const taken = await trx
      .updateTable('stock')
      .set({ available: sql`available - ${needed}`, reserved: sql`reserved + ${needed}`, updated_at_ms: now_ms })
      .where('activity_sku_id', '=', item.activitySkuId)
      .where('available', '>=', needed)
      .where('flash_sale_activity_id', 'is', null)
      .executeTakeFirst();
    if (affected(taken) === 0) throw await refusal(trx, item.activitySkuId);
  }
  if (item.activityPrice) await takeActivityPriceUnits(trx, orderNo, item, item.activityPrice, now_ms);
}

/**
 * Why a conditional take moved nothing: sold out, or the SKU's units are gated by a flash sale in
 * Redis (the activity turned hot after this checkout read it; its retry takes the Redis path).
 */
async function refusal(trx: InventoryTransaction, activitySkuId: number): Promise<AppError> {
  const row = await trx.selectFrom('stock').select('flash_sale_activity_id').where('activity_sku_id', '=', activitySkuId).executeTakeFirst();
  if (row && row.flash_sale_activity_id !== null) return new AppError('flash_sale_not_ready', { details: { activitySkuId } });
  return new AppError('insufficient_stock', { details: { activitySkuId } });
}

interface LockedStockRow {
  activity_sku_id: number;
  available: number;
  activity_price_taken: number;
  flash_sale_activity_id: number | null;
}

/** The server engines' row locks on a cart's stock rows, taken in id order, with what the batch checks. */
async function lockStockRows(trx: InventoryTransaction, activitySkuIds: number[]): Promise<Map<number, LockedStockRow>> {
  const locked = await trx
    .selectFrom('stock')
    .select(['activity_sku_id', 'available', 'activity_price_taken', 'flash_sale_activity_id'])
    .where('activity_sku_id', 'in', activitySkuIds)
    .orderBy('activity_sku_id')
    .forUpdate()
    .execute();
  return new Map(locked.map((r) => [r.activity_sku_id, r]));
}

/**
 * A whole cart in a fixed number of round trips on the server engines: its stock rows already
 * locked and read in id order, check them, then one insert of the reservations and one update
 * of the stock.
 */
async function takeStockInBatch(
  trx: InventoryTransaction,
  orderNo: string,
  toTake: { item: StockItem; reclaimed: boolean }[],
  rows: ReadonlyMap<number, LockedStockRow>,
  now_ms: number,
): Promise<void> {
  const units = toTake.map(({ item }) => {
    const row = rows.get(item.activitySkuId);
    if (row && row.flash_sale_activity_id !== null) throw new AppError('flash_sale_not_ready', { details: { activitySkuId: item.activitySkuId } });
    if (!row || row.available < item.quantity) throw new AppError('insufficient_stock', { details: { activitySkuId: item.activitySkuId } });
    if (!item.activityPrice) return 0;
    const left = Math.max(0, item.activityPrice.limit - row.activity_price_taken);
    if (Math.min(item.quantity, left) !== item.activityPrice.units) throw new AppError('price_changed', { details: { activitySkuId: item.activitySkuId } });
    return item.activityPrice.units;
  });
  const fresh = toTake.map((t, i) => ({ ...t, units: units[i]! })).filter((t) => !t.reclaimed);
  if (fresh.length > 0) {
    await trx
      .insertInto('stock_reservations')
      .values(
        fresh.map(({ item, units }) => ({
          order_no: orderNo,
          activity_sku_id: item.activitySkuId,
          quantity: item.quantity,
          state: 'reserved',
          activity_price_units: units,
          created_at_ms: now_ms,
          updated_at_ms: now_ms,
        })),
      )
      .execute();
  }
  for (const [i, { item, reclaimed }] of toTake.entries()) {
    if (reclaimed && units[i]! > 0) {
      await trx.updateTable('stock_reservations').set({ activity_price_units: units[i]! }).where('order_no', '=', orderNo).where('activity_sku_id', '=', item.activitySkuId).execute();
    }
  }
  const moves = toTake.map(({ item }, i) => ({ id: item.activitySkuId, quantity: item.quantity, units: units[i]! }));
  const statement =
    dialectOf(trx) === 'postgres'
      ? sql`update stock set available = stock.available - v.q, reserved = stock.reserved + v.q,
              activity_price_taken = stock.activity_price_taken + v.a, updated_at_ms = ${now_ms}
            from (values ${sql.join(moves.map((m) => sql`(${m.id}::bigint, ${m.quantity}::bigint, ${m.units}::bigint)`))}) as v(id, q, a)
            where stock.activity_sku_id = v.id and stock.available >= v.q`
      : sql`update stock set
              available = available - (case activity_sku_id ${sql.join(moves.map((m) => sql`when ${m.id} then ${m.quantity}`), sql` `)} end),
              reserved = reserved + (case activity_sku_id ${sql.join(moves.map((m) => sql`when ${m.id} then ${m.quantity}`), sql` `)} end),
              activity_price_taken = activity_price_taken + (case activity_sku_id ${sql.join(moves.map((m) => sql`when ${m.id} then ${m.units}`), sql` `)} end),
              updated_at_ms = ${now_ms}
            where activity_sku_id in (${sql.join(moves.map((m) => m.id))})`;
  const result = await statement.execute(trx);
  assert(Number(result.numAffectedRows ?? 0n) === moves.length, () => `batch stock update moved ${result.numAffectedRows} of ${moves.length} rows`);
}

/** Counts the item's activity-price units against the SKU's limit; the stock row is already locked. */
async function takeActivityPriceUnits(trx: InventoryTransaction, orderNo: string, item: StockItem, price: { limit: number; units: number }, now_ms: number): Promise<void> {
  let read = trx.selectFrom('stock').select('activity_price_taken').where('activity_sku_id', '=', item.activitySkuId);
  if (dialectOf(trx) !== 'sqlite') read = read.forUpdate();
  const { activity_price_taken } = await read.executeTakeFirstOrThrow();
  const left = Math.max(0, price.limit - activity_price_taken);
  if (Math.min(item.quantity, left) !== price.units) throw new AppError('price_changed', { details: { activitySkuId: item.activitySkuId } });
  if (price.units === 0) return;
  await trx
    .updateTable('stock')
    .set({ activity_price_taken: sql`activity_price_taken + ${price.units}`, updated_at_ms: now_ms })
    .where('activity_sku_id', '=', item.activitySkuId)
    .execute();
  await trx
    .updateTable('stock_reservations')
    .set({ activity_price_units: price.units })
    .where('order_no', '=', orderNo)
    .where('activity_sku_id', '=', item.activitySkuId)
    .execute();
}

/**
 * Ends every reservation of the order that is still `reserved` (or `pending`), in the caller's
 * transaction: confirmed at payment, released otherwise; once, since each row's state change is
 * a compare-and-set and only the winner moves the stock. Returns the number of units moved.
 */
async function endReservations(trx: InventoryTransaction, orderNo: string, to: 'confirmed' | 'released', now_ms: number, activitySkuIds: readonly number[] | 'all' = 'all'): Promise<number> {
  if (activitySkuIds !== 'all' && activitySkuIds.length === 0) return 0;
  let query = trx
    .selectFrom('stock_reservations')
    .select(['activity_sku_id', 'quantity', 'activity_price_units', 'state', 'hold_key', 'from_hold'])
    .where('order_no', '=', orderNo)
    .where('state', 'in', ['reserved', 'pending']);
  if (activitySkuIds !== 'all') query = query.where('activity_sku_id', 'in', [...activitySkuIds]);
  const open = await query.orderBy('activity_sku_id').execute();
  let moved = 0;
  for (const r of open) {
    if (!(await moveReservation(trx, orderNo, r.activity_sku_id, r.state as ReservationState, to, now_ms))) continue;
    if (r.state === 'pending') {
      // A flash-sale reservation the stock row never saw: given up, nothing moves back; paid
      // before the order.placed subscriber applied it, its units go from available to sold.
      if (to === 'confirmed') await moveUnits(trx, r.activity_sku_id, r.quantity, 'available', 'sold', now_ms);
      moved += r.quantity;
      continue;
    }
    // Units the order took from the buyer's cart hold go back to it if it is still theirs
    // (a failed checkout; after a placed order the hold is gone); they stay reserved.
    const backToHold =
      to === 'released' && r.hold_key && Number(r.from_hold) > 0 ? await giveBackToHold(trx, r.hold_key, r.activity_sku_id, Math.min(Number(r.from_hold), r.quantity), now_ms) : 0;
    const freed = r.quantity - backToHold;
    // A release also gives its activity-price units back to the next buyers.
    const bucket =
      to === 'confirmed'
        ? { sold: sql<number>`sold + ${r.quantity}` }
        : { available: sql<number>`available + ${freed}`, activity_price_taken: sql<number>`activity_price_taken - ${r.activity_price_units}` };
    const changed = await trx
      .updateTable('stock')
      .set({ ...bucket, reserved: sql`reserved - ${to === 'confirmed' ? r.quantity : freed}`, updated_at_ms: now_ms })
      .where('activity_sku_id', '=', r.activity_sku_id)
      .where('reserved', '>=', r.quantity)
      .where('activity_price_taken', '>=', to === 'released' ? r.activity_price_units : 0)
      .executeTakeFirst();
    assert(affected(changed) === 1, () => `reservation ${orderNo}/${r.activity_sku_id} exceeds the reserved stock`);
    moved += r.quantity;
  }
  return moved;
}

/**
 * Moves units between two buckets of a stock row by conditional update; the source must hold
 * them, or the ledger is broken (the Redis gate promised units the database does not have).
 */
export async function moveUnits(
  trx: InventoryTransaction,
  activitySkuId: number,
  quantity: number,
  from: 'available' | 'reserved',
  to: 'reserved' | 'sold',
  now_ms: number,
): Promise<void> {
  const changed = await trx
    .updateTable('stock')
    .set({ [from]: sql`${sql.ref(from)} - ${quantity}`, [to]: sql`${sql.ref(to)} + ${quantity}`, updated_at_ms: now_ms })
    .where('activity_sku_id', '=', activitySkuId)
    .where(from, '>=', quantity)
    .executeTakeFirst();
  assert(affected(changed) === 1, () => `stock of ${activitySkuId} has fewer than ${quantity} ${from} units to move to ${to}`);
}

/**
 * 库存扣减 at payment: reserved → sold. A checkout's reservations are kept under its number; each
 * of its orders, paid on its own, confirms its own lines' (all of them when not given).
 */
export function confirmReservation(trx: InventoryTransaction, holdNo: string, now_ms: number, activitySkuIds: readonly number[] | 'all' = 'all'): Promise<number> {
  return endReservations(trx, holdNo, 'confirmed', now_ms, activitySkuIds);
}

/** At cancel, timeout or a failed checkout: reserved → available. */
export function releaseReservation(trx: InventoryTransaction, orderNo: string, now_ms: number): Promise<number> {
  return endReservations(trx, orderNo, 'released', now_ms);
}

export async function reservationsOf(db: InventoryDb | InventoryTransaction, orderNo: string): Promise<{ activitySkuId: number; quantity: number; state: ReservationState }[]> {
  const rows = await db
    .selectFrom('stock_reservations')
    .select(['activity_sku_id', 'quantity', 'state'])
    .where('order_no', '=', orderNo)
    .orderBy('activity_sku_id')
    .execute();
  return rows.map((r) => ({ activitySkuId: r.activity_sku_id, quantity: r.quantity, state: r.state as ReservationState }));
}
export type * from './tables.ts';
