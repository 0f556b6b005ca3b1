/**
 * The flash sale's safety net, run periodically by every API process (the activity lock keeps
 * two from working on one activity): hot activities missing from Redis are loaded (after a
 * restart, or ahead of the start: 预热); activities no longer hot, or ended, are given back to
 * the database; for the rest Redis and the database are compared per SKU and drift repaired.
 *
 * Drift is what Redis may grant minus what the database says it may: database available minus
 * the pending units Redis holds as granted, minus the returned units Redis is still to count
 * (returns.ts; returns a crash left half done are finished here first). It should be zero; it
 * is not after a Redis write lost to a crash, or a hand edit. A measurement counts only if Redis
 * did not change meanwhile, and a repair is made only when two measurements RECONCILE_REMEASURE_MS
 * apart agree, so a checkout half way through (pending written, Redis not yet asked) is never
 * mistaken for drift.
 */
import { activitySkuIdsOf, hotActivities } from '../../catalog/index.ts';

import { gatingActivities, reconcileSnapshot } from './ledger.ts';
import { ensureLoaded, isLoaded, unloadActivity } from './load.ts';
import { keysOf, redisCall, runScript, sleep, withActivityLock, type FlashSale } from './redis.ts';
import { finishFlashSaleReturns } from './returns.ts';
import { RECONCILE } from './scripts.ts';
import type { FlashSaleDb } from '../tables.ts';

export const RECONCILE_REMEASURE_MS = 200;
/** An activity with more pending (and returning) reservations than this is too busy to measure; the next pass tries again. */
export const MAX_RECONCILE_PENDING = 5_000;
export const FLASH_SALE_UPKEEP_INTERVAL_MS = 10_000;

export interface DriftRepair {
  activityId: number;
  activitySkuId: number;
  redisAvailable: number;
  drift: number;
}

export interface UpkeepReport {
  loaded: number[];
  unloaded: number[];
  repaired: DriftRepair[];
  busy: number[];
  /** Returned units Redis counted in this pass, of returns a crash had left half done. */
  returned: number;
}

export async function flashSaleUpkeep(flashSale: FlashSale, db: FlashSaleDb, now_ms: number): Promise<UpkeepReport> {
  const report: UpkeepReport = { loaded: [], unloaded: [], repaired: [], busy: [], returned: 0 };
  const hot = await hotActivities(db, now_ms);
  const hotIds = new Set(hot.map((a) => a.id));
  for (const activityId of await gatingActivities(db)) {
    if (hotIds.has(activityId)) continue;
    await unloadActivity(flashSale, db, activityId, now_ms);
    report.unloaded.push(activityId);
  }
  report.returned = await finishFlashSaleReturns(flashSale, db, now_ms);
  for (const activity of hot) {
    if (!(await isLoaded(flashSale, activity.id))) {
      if ((await ensureLoaded(flashSale, db, activity.id, now_ms)) === 'loaded') report.loaded.push(activity.id);
      continue;
    }
    const outcome = await reconcileActivity(flashSale, db, activity.id);
    if (outcome === 'busy') report.busy.push(activity.id);
    else report.repaired.push(...outcome);
  }
  return report;
}

/** Measures twice, repairs what both measurements agree on, and logs every repair. */
export async function reconcileActivity(flashSale: FlashSale, db: FlashSaleDb, activityId: number): Promise<DriftRepair[] | 'busy'> {
  const outcome = await withActivityLock(flashSale, activityId, async (token) => {
    const skuIds = await activitySkuIdsOf(db, activityId);
    const first = await measure(flashSale, db, activityId, skuIds, token, new Map());
    if (first === 'busy') return 'busy' as const;
    const drifts = new Map([...first].filter(([, m]) => m.drift !== 0).map(([sku, m]) => [sku, m.drift]));
    if (drifts.size === 0) return [];
    await sleep(RECONCILE_REMEASURE_MS);
    const second = await measure(flashSale, db, activityId, skuIds, token, drifts);
    if (second === 'busy') return 'busy' as const;
    const repairs: DriftRepair[] = [];
    for (const [activitySkuId, m] of second) {
      if (!m.repaired) continue;
      const repair = { activityId, activitySkuId, redisAvailable: m.redisAvailable, drift: m.drift };
      // Positive drift: Redis held back units the database has free; negative: Redis could have
      // granted units the database does not have, caught before anyone was promised them.
      flashSale.log.warn({ ...repair, redisAvailableAfter: m.redisAvailable + m.drift }, 'flash sale: repaired drift between Redis and the database');
      repairs.push(repair);
    }
    return repairs;
  });
  return outcome;
}

interface Measurement {
  redisAvailable: number;
  drift: number;
  repaired: boolean;
}

/** One measurement; with `repairs`, the drifts to add where they are measured again unchanged. */
async function measure(
  flashSale: FlashSale,
  db: FlashSaleDb,
  activityId: number,
  skuIds: readonly number[],
  token: string,
  repairs: Map<number, number>,
): Promise<Map<number, Measurement> | 'busy'> {
  const keys = keysOf(flashSale, activityId);
  // Read before the database: any grant or give-back after this point makes the answer 'busy'.
  const seq0 = (await redisCall(() => flashSale.redis.get(keys.seq))) ?? '0';
  const snapshot = await reconcileSnapshot(db, skuIds);
  const rowCount = [...snapshot.pending.values(), ...snapshot.returning.values()].reduce((n, rows) => n + rows.length, 0);
  if (rowCount > MAX_RECONCILE_PENDING) return 'busy';
  const args: (string | number)[] = [token, seq0, repairs.size > 0 ? 'repair' : 'measure'];
  for (const sku of skuIds) {
    const pending = snapshot.pending.get(sku) ?? [];
    const returning = snapshot.returning.get(sku) ?? [];
    args.push(sku, snapshot.available.get(sku) ?? 0, repairs.get(sku) ?? 0, pending.length, returning.length);
    args.push(...pending.flatMap((reservation) => [reservation.orderNo, reservation.quantity]), ...returning.flatMap((reservation) => [reservation.orderNo, reservation.quantity]));
  }
  const answer = (await runScript(flashSale, RECONCILE, [keys.avail, keys.orders, keys.loaded, keys.seq, keys.lock], args)) as string[];
  if (answer[0] !== 'ok') return 'busy';
  const out = new Map<number, Measurement>();
  for (let i = 1; i < answer.length; i += 4) {
    out.set(Number(answer[i]), { redisAvailable: Number(answer[i + 1]), drift: Number(answer[i + 2]), repaired: answer[i + 3] === '1' });
  }
  return out;
}

/** The periodic pass; stop() waits for a pass under way. */
export function startFlashSaleUpkeep(flashSale: FlashSale, db: FlashSaleDb, now: () => number, interval_ms: number, onError: (error: unknown) => void): { stop(): Promise<void> } {
  let stopped = false;
  let current: Promise<unknown> = Promise.resolve();
  const timer = setInterval(() => {
    if (stopped) return;
    current = current.then(() => (stopped ? undefined : flashSaleUpkeep(flashSale, db, now()).catch(onError)));
  }, interval_ms);
  timer.unref?.();
  return {
    stop: async () => {
      stopped = true;
      clearInterval(timer);
      await current;
    },
  };
}
