/**
 * 秒杀 reservation through Redis. The order of every step is what keeps Redis from ever promising
 * a unit the database does not have:
 *   1. the reservation rows are written `pending` in the database (with the checkout's
 *      verification job) before Redis is asked, so a crash after the grant leaves a trace;
 *   2. one script per activity grants all its SKUs or none, idempotent by order number;
 *   3. the order's transaction records order.placed; its subscriber moves the pending units in
 *      the stock row (applyPendingReservations).
 * Giving back runs the other way: Redis first, then the database, so a unit is never free in the
 * database while Redis still holds it for someone.
 */

import { AppError } from '../../platform/errors.ts';
import { gatedReservationsOf, type FlashSaleItem } from './ledger.ts';
import { ensureLoaded } from './load.ts';
import { keysOf, runScript, type FlashSale } from './redis.ts';
import { AVAILABLE, RELEASE, RESERVE } from './scripts.ts';
import type { InventoryDb } from '../tables.ts';

/** A reserve that finds the activity unloaded loads it and tries again, at most this many times in all. */
export const MAX_RESERVE_ATTEMPTS = 3;

function byActivity<T extends { activityId: number }>(items: readonly T[]): Map<number, T[]> {
  const groups = new Map<number, T[]>();
  for (const item of [...items].sort((a, b) => a.activityId - b.activityId)) groups.set(item.activityId, [...(groups.get(item.activityId) ?? []), item]);
  return groups;
}

/**
 * What Redis may still grant of each SKU, for checkout to refuse a visibly sold-out line before
 * writing anything. SKUs of an activity that is not loaded are absent (the reserve loads it).
 */
export async function flashSaleAvailable(flashSale: FlashSale, items: readonly { activityId: number; activitySkuId: number }[]): Promise<Map<number, number>> {
  const available = new Map<number, number>();
  for (const [activityId, group] of byActivity(items)) {
    const keys = keysOf(flashSale, activityId);
    const counts = (await runScript(flashSale, AVAILABLE, [keys.avail, keys.loaded], group.map((i) => i.activitySkuId))) as (string | null)[] | null;
    if (!counts) continue;
    group.forEach((item, i) => {
      if (counts[i] != null) available.set(item.activitySkuId, Number(counts[i]));
    });
  }
  return available;
}

/**
 * Step 2: asks Redis for the order's units, one script per activity (a cluster keeps each
 * activity on its own slot). Refusals are `insufficient_stock` or `purchase_limit_exceeded`
 * (details.activitySkuId); Redis out of reach, or an activity that cannot be loaded, is the
 * retryable `flash_sale_not_ready`. On any refusal the caller releases the whole order
 * (releaseFlashSaleReservations): activities granted before it are given back there.
 */
export async function grantFlashSale(flashSale: FlashSale, db: InventoryDb, orderNo: string, buyerId: number, items: readonly FlashSaleItem[], now_ms: number): Promise<void> {
  for (const [activityId, group] of byActivity(items)) {
    const keys = keysOf(flashSale, activityId);
    const args = [orderNo, String(buyerId), ...group.flatMap((i) => [i.activitySkuId, i.quantity, i.purchaseLimit ?? -1])];
    for (let attempt = 1; ; attempt++) {
      const answer = (await runScript(flashSale, RESERVE, [keys.avail, keys.bought, keys.orders, keys.loaded, keys.seq], args)) as string[];
      const outcome = answer[0] === 'repeat' ? repeated(answer[1]!) : answer;
      if (outcome[0] === 'reserved') break;
      if (outcome[0] === 'refused') {
        const activitySkuId = Number(outcome[2]);
        const limit = group.find((i) => i.activitySkuId === activitySkuId)?.purchaseLimit;
        throw new AppError(outcome[1] as 'insufficient_stock' | 'purchase_limit_exceeded', {
          details: outcome[1] === 'purchase_limit_exceeded' ? { activitySkuId, limit } : { activitySkuId },
        });
      }
      if (outcome[0] === 'released') throw new AppError('flash_sale_not_ready', { details: { activityId, reason: 'order_released' } });
      // not loaded: Redis lost the activity (or never had it); load it from the database and retry.
      if (attempt >= MAX_RESERVE_ATTEMPTS || (await ensureLoaded(flashSale, db, activityId, now_ms)) === 'not_hot') {
        throw new AppError('flash_sale_not_ready', { details: { activityId, reason: 'not_loaded' } });
      }
    }
  }
}

/** A repeat of an order number answers what the first call answered. */
function repeated(record: string): string[] {
  if (record.startsWith('R|')) return ['reserved'];
  if (record.startsWith('X|')) return ['refused', ...record.slice(2).split('|')];
  return ['released'];
}

/**
 * Gives back in Redis whatever the order holds there (cancel, timeout, a failed or abandoned
 * checkout), once; the caller then releases the database rows. Throws `flash_sale_not_ready`
 * while Redis is out of reach, and the caller must then leave the database rows as they are:
 * releasing them first would free units Redis still counts as taken by nobody.
 */
export async function releaseFlashSaleReservations(flashSale: FlashSale, db: InventoryDb, orderNo: string): Promise<number> {
  const gated = await gatedReservationsOf(db, orderNo);
  let released = 0;
  for (const activityId of [...gated.keys()].sort((a, b) => a - b)) {
    const keys = keysOf(flashSale, activityId);
    const answer = await runScript(flashSale, RELEASE, [keys.avail, keys.bought, keys.orders, keys.loaded, keys.seq], [orderNo]);
    if (answer === 'released') released += 1;
  }
  return released;
}
