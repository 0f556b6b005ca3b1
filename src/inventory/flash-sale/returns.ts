/**
 * Sold units of a SKU Redis serves, given back (a refund of the line, or any other return of sold
 * units): the database first — returnSoldStock moves them to available in the stock row and
 * leaves the reservation `returning` — then Redis counts them, then the row becomes `returned`.
 * In that order the database never has fewer free units than Redis may grant, and the durable
 * `returning` row is the to-do a crash cannot lose. Redis counts each (order, SKU) once: the
 * RETURN script leaves a marker, and a load from a snapshot that already held the units writes
 * the same marker. The reconciler does not take units still owed this way for drift.
 */

import { AppError, isAppError } from '../../platform/errors.ts';
import { finishReturns, ordersReturning, returningOf } from './ledger.ts';
import { ensureLoaded } from './load.ts';
import { keysOf, runScript, type FlashSale } from './redis.ts';
import { RETURN } from './scripts.ts';
import type { InventoryDb } from '../tables.ts';

/** Orders with returning units that one upkeep pass finishes; the next pass takes the rest. */
export const MAX_RETURNS_PER_PASS = 200;
/** A return that finds the activity unloaded loads it and tries again, at most this many times in all. */
const MAX_RETURN_ATTEMPTS = 3;

/**
 * Redis counts the order's returning units; they become returned. Safe to repeat and to run
 * concurrently (RETURN counts an (order, SKU) once). Throws `flash_sale_not_ready` while Redis is
 * out of reach; the rows stay returning for the next attempt. An activity Redis lost that is no
 * longer hot (or has ended) is not loaded again: its rows stay returning until the upkeep has
 * given its stock back to the database, and the next pass marks them returned.
 * Returns the units Redis counted by this call.
 */
export async function returnFlashSaleStock(flashSale: FlashSale, db: InventoryDb, orderNo: string, now_ms: number): Promise<number> {
  const rows = await returningOf(db, orderNo);
  // Not gated (any more): the activity was given back to the database, whose count is all there is.
  await finishReturns(db, orderNo, rows.filter((r) => r.activityId === null).map((r) => r.activitySkuId), now_ms);
  const byActivity = new Map<number, typeof rows>();
  for (const r of rows) if (r.activityId !== null) byActivity.set(r.activityId, [...(byActivity.get(r.activityId) ?? []), r]);
  let added = 0;
  for (const [activityId, group] of [...byActivity].sort(([a], [b]) => a - b)) {
    const counted = await countInRedis(flashSale, db, orderNo, activityId, group, now_ms);
    if (counted === 'not_hot') continue;
    added += counted;
    await finishReturns(db, orderNo, group.map((r) => r.activitySkuId), now_ms);
  }
  return added;
}

async function countInRedis(
  flashSale: FlashSale,
  db: InventoryDb,
  orderNo: string,
  activityId: number,
  group: readonly { activitySkuId: number; quantity: number }[],
  now_ms: number,
): Promise<number | 'not_hot'> {
  const keys = keysOf(flashSale, activityId);
  const args = [orderNo, ...group.flatMap((r) => [r.activitySkuId, r.quantity])];
  for (let attempt = 1; ; attempt++) {
    const answer = await runScript(flashSale, RETURN, [keys.avail, keys.orders, keys.loaded, keys.seq], args);
    if (answer !== 'not_loaded') return Number(answer);
    // Redis lost the activity (or is loading it): the load takes the units from the database's
    // available and marks them counted, so the RETURN after it adds nothing twice.
    if ((await ensureLoaded(flashSale, db, activityId, now_ms)) === 'not_hot') return 'not_hot';
    if (attempt >= MAX_RETURN_ATTEMPTS) throw new AppError('flash_sale_not_ready', { details: { activityId, reason: 'not_loaded' } });
  }
}

/**
 * The upkeep's share: finishes returns a crash (or a dead-lettered event) left returning. An
 * order whose activity cannot be reached now is left for the next pass.
 */
export async function finishFlashSaleReturns(flashSale: FlashSale, db: InventoryDb, now_ms: number): Promise<number> {
  let added = 0;
  for (const orderNo of await ordersReturning(db, MAX_RETURNS_PER_PASS)) {
    try {
      added += await returnFlashSaleStock(flashSale, db, orderNo, now_ms);
    } catch (error) {
      if (!isAppError(error, 'flash_sale_not_ready')) throw error;
      flashSale.log.warn({ err: error, orderNo }, 'flash sale: returned units not yet counted in Redis; the next upkeep pass tries again');
    }
  }
  return added;
}
