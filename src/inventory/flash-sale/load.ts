/**
 * Loading an activity's stock into Redis, and giving it back to the database. A load happens
 * when Redis lacks the activity (first use, or Redis restarted and lost its data): under the
 * activity's lock the database gates the SKUs and takes a snapshot, and Redis gets
 * available = database available − pending, every open reservation's record (so a later
 * cancel gives its units back, and a repeat of an in-flight reserve is recognised), and the
 * buyers' purchase counts. Until the `loaded` marker is set last, Redis grants nothing.
 */
import { getActivity, activitySkuIdsOf, type Activity } from '../../catalog/index.ts';

import { AppError } from '../../platform/errors.ts';
import { adjustStock, type StockAdjustment } from '../adjustments.ts';
import { gateAndSnapshot, gatingActivityOf, pendingUnits, ungate, type LoadSnapshot } from './ledger.ts';
import { keysOf, redisCall, returnMarkerOf, runScript, sleep, withActivityLock, type FlashSale } from './redis.ts';
import { CLEAR, LOAD_FINISH, LOAD_RECORDS, PAUSE } from './scripts.ts';
import type { FlashSaleDb } from '../tables.ts';

/** Reservation records sent to Redis per script call while loading. */
export const LOAD_BATCH_RECORDS = 500;
/** A reserve that finds the activity unloaded waits this long at most for someone's load. */
export const LOAD_WAIT_MS = 3_000;
const LOAD_WAIT_POLL_MS = 20;
/** Redis keeps an activity's keys this long past its end, for late cancels; then they expire. */
export const KEY_RETENTION_MS = 2 * 24 * 3600_000;

export async function isLoaded(flashSale: FlashSale, activityId: number): Promise<boolean> {
  return (await redisCall(() => flashSale.redis.exists(keysOf(flashSale, activityId).loaded))) === 1;
}

/**
 * Makes sure the activity is loaded: loads it, or waits for whoever is loading it.
 * 'not_hot': the activity is not (or no longer) hot or has ended, and nothing was loaded.
 */
export async function ensureLoaded(flashSale: FlashSale, db: FlashSaleDb, activityId: number, now_ms: number): Promise<'loaded' | 'not_hot'> {
  const deadline_ms = Date.now() + LOAD_WAIT_MS;
  while (Date.now() < deadline_ms) {
    const outcome = await withActivityLock(flashSale, activityId, (token) => loadUnderLock(flashSale, db, activityId, token, now_ms));
    if (outcome !== 'busy') return outcome;
    if (await isLoaded(flashSale, activityId)) return 'loaded';
    await sleep(LOAD_WAIT_POLL_MS);
  }
  throw new AppError('flash_sale_not_ready', { details: { activityId, reason: 'loading' } });
}

/** The load itself, by the lock's holder. */
export async function loadUnderLock(flashSale: FlashSale, db: FlashSaleDb, activityId: number, token: string, now_ms: number): Promise<'loaded' | 'not_hot'> {
  if (await isLoaded(flashSale, activityId)) return 'loaded';
  const activity = await getActivity(db, activityId);
  if (!activity || !activity.hot || now_ms >= activity.ends_at_ms) return 'not_hot';
  const skuIds = await activitySkuIdsOf(db, activityId);
  const snapshot = await gateAndSnapshot(db, activityId, skuIds);
  const keys = keysOf(flashSale, activityId);
  const all = [keys.avail, keys.bought, keys.orders, keys.loaded, keys.seq, keys.lock];
  if ((await runScript(flashSale, CLEAR, all, [token])) !== 1) throw lockLost(activityId);
  const { records, bought, available } = whatRedisHolds(snapshot);
  for (let i = 0; i < Math.max(records.length, bought.length); i += LOAD_BATCH_RECORDS) {
    const chunk = records.slice(i, i + LOAD_BATCH_RECORDS);
    const counts = bought.slice(i, i + LOAD_BATCH_RECORDS);
    const args = [token, chunk.length, ...chunk.flat(), ...counts.flat()];
    if ((await runScript(flashSale, LOAD_RECORDS, [keys.orders, keys.bought, keys.lock], args)) !== 1) throw lockLost(activityId);
  }
  const info = JSON.stringify({ loaded_at_ms: now_ms, skus: skuIds.length, records: records.length });
  const finish = [token, activity.ends_at_ms + KEY_RETENTION_MS, info, ...[...available].flat()];
  if ((await runScript(flashSale, LOAD_FINISH, all, finish)) !== 1) throw lockLost(activityId);
  flashSale.log.info({ activityId, available: Object.fromEntries(available), records: records.length }, 'flash sale: loaded the activity’s stock into Redis from the database');
  return 'loaded';
}

function lockLost(activityId: number): AppError {
  return new AppError('flash_sale_not_ready', { details: { activityId, reason: 'load_interrupted' } });
}

/**
 * What Redis must hold for a snapshot: available − pending per SKU; a record for every open
 * reservation, so it is given back when released — R for reserved ones (their order exists),
 * U (in doubt) for pending ones, whose checkout may still be waiting for Redis's answer; and
 * per buyer the units of every live reservation (paid ones too) for the purchase limits. Sold
 * units given back (returning) are in the database's available already: their B marker tells
 * the RETURN that is still to come that they are counted.
 */
export function whatRedisHolds(snapshot: LoadSnapshot): { records: [string, string][]; bought: [string, number][]; available: Map<number, number> } {
  const available = new Map(snapshot.available);
  const byOrder = new Map<string, { buyerId: number; parts: string[]; inDoubt: boolean }>();
  const bought = new Map<string, number>();
  const counted: [string, string][] = [];
  for (const r of snapshot.open) {
    if (r.state === 'returning') {
      counted.push([returnMarkerOf(r.orderNo, r.activitySkuId), `B|${r.quantity}`]);
      continue;
    }
    if (r.state === 'pending') available.set(r.activitySkuId, (available.get(r.activitySkuId) ?? 0) - r.quantity);
    if (r.state !== 'confirmed') {
      const record = byOrder.get(r.orderNo) ?? { buyerId: r.buyerId ?? 0, parts: [], inDoubt: false };
      record.parts.push(`${r.activitySkuId}:${r.quantity}`);
      record.inDoubt ||= r.state === 'pending';
      byOrder.set(r.orderNo, record);
    }
    if (r.buyerId !== null) {
      const field = `${r.activitySkuId}:${r.buyerId}`;
      bought.set(field, (bought.get(field) ?? 0) + r.quantity);
    }
  }
  return {
    records: [...[...byOrder].map(([orderNo, r]): [string, string] => [orderNo, `${r.inDoubt ? 'U' : 'R'}|${r.buyerId}|${r.parts.join(',')}`]), ...counted],
    bought: [...bought],
    available,
  };
}

/**
 * Gives an activity's stock back to the database (taken off hot, or ended): Redis first stops
 * granting and forgets the activity, then the database turns its pending reservations into
 * reserved ones and opens the gate. Waits for the lock, since others only hold it briefly.
 */
export async function unloadActivity(flashSale: FlashSale, db: FlashSaleDb, activityId: number, now_ms: number): Promise<void> {
  const deadline_ms = Date.now() + LOAD_WAIT_MS;
  for (;;) {
    const outcome = await withActivityLock(flashSale, activityId, async (token) => {
      const keys = keysOf(flashSale, activityId);
      if ((await runScript(flashSale, CLEAR, [keys.avail, keys.bought, keys.orders, keys.loaded, keys.seq, keys.lock], [token])) !== 1) throw lockLost(activityId);
      const skus = await ungate(db, activityId, now_ms);
      flashSale.log.info({ activityId, skus }, 'flash sale: gave the activity’s stock back to the database');
    });
    if (outcome !== 'busy') return;
    if (Date.now() > deadline_ms) throw new AppError('flash_sale_not_ready', { details: { activityId, reason: 'locked' } });
    await sleep(LOAD_WAIT_POLL_MS);
  }
}

/** The admin turned an activity's hot flag: load it now (预热), or give its stock back to the database. */
export async function flashSaleHotChanged(flashSale: FlashSale, db: FlashSaleDb, activity: Activity, now_ms = Date.now()): Promise<void> {
  if (activity.hot) {
    // A failed warm-up is not the admin's problem: the first buyer (or the upkeep pass) loads it.
    await ensureLoaded(flashSale, db, activity.id, now_ms).catch((error) => flashSale.log.warn({ err: error, activityId: activity.id }, 'flash sale: warm-up load failed'));
  } else {
    await unloadActivity(flashSale, db, activity.id, now_ms);
  }
}

/**
 * A stock adjustment of a SKU that Redis serves: the activity is paused (Redis grants nothing),
 * the database is adjusted — a take-away only from units no pending reservation may hold — and
 * the activity is reloaded, so Redis learns the new count exactly.
 */
export async function adjustFlashSaleStock(
  flashSale: FlashSale,
  db: FlashSaleDb,
  input: { activitySkuId: number; delta: number; reason: string; actor: string; requestId: string },
  now_ms: number,
): Promise<StockAdjustment> {
  const activityId = await gatingActivityOf(db, input.activitySkuId);
  if (activityId === null) return adjustStock(db, input, now_ms);
  const deadline_ms = Date.now() + LOAD_WAIT_MS;
  for (;;) {
    const outcome = await withActivityLock(flashSale, activityId, async (token) => {
      const keys = keysOf(flashSale, activityId);
      if ((await runScript(flashSale, PAUSE, [keys.loaded, keys.lock], [token])) !== 1) throw lockLost(activityId);
      try {
        return await adjustStock(db, input, now_ms, await pendingUnits(db, input.activitySkuId));
      } finally {
        await loadUnderLock(flashSale, db, activityId, token, now_ms).catch((error) => flashSale.log.warn({ err: error, activityId }, 'flash sale: reload after an adjustment failed; the next buyer reloads'));
      }
    });
    if (outcome !== 'busy') return outcome;
    if (Date.now() > deadline_ms) throw new AppError('flash_sale_not_ready', { details: { activityId, reason: 'locked' } });
    await sleep(LOAD_WAIT_POLL_MS);
  }
}
