import { INBOX_RETENTION_MS, pruneInbox } from '../events/index.ts';
import { performance } from 'node:perf_hooks';
import { cancelDeadJobs, hasJobs, scheduleJob, type JobHandler } from '../jobs/index.ts';
import type { PaymentCentre } from '../payments/index.ts';
import type { ConsistencyPlatform } from './check.ts';
import { transaction } from '../platform/db/retry.ts';
import { LEASE_MS } from '../platform/due-rows.ts';
import type { Check, CheckName, Finding, ReconcileContext } from './check.ts';
import { frozenPoints, lockedCoupons, orphanReservations } from './holds.ts';
import { orderedCartLines, overdueOrders, unappliedPayments } from './orders.ts';
import { recordRepair } from './repairs.ts';

/**
 * 对账兜底: the checks in the order they run. Payments come first, so an order whose money
 * arrived is paid before the overdue check could expire it; orders are expired before their
 * holds are looked at, so the holds of an order cancelled in this pass are left to its own
 * order.cancelled subscribers.
 */
export const CHECKS: readonly Check<any>[] = [unappliedPayments, overdueOrders, orphanReservations, lockedCoupons, frozenPoints, orderedCartLines];

export const RECONCILE_JOB = 'consistency.reconcile';
export const RECONCILE_INTERVAL_MS = 60_000;
/**
 * A pass stops starting repairs after this long: it runs as a claimed job, and must finish well
 * inside the job's lease, or a second worker would claim it and run a pass beside it.
 */
export const MAX_PASS_MS = LEASE_MS / 2;
/** A pass that cannot reschedule itself (its database is down) is retried this many times. */
const RECONCILE_JOB_ATTEMPTS = 100;

export interface PassReport {
  repairs: { check: CheckName; key: string; action: string; detail?: string | undefined }[];
  failures: { check: CheckName; key: string; error: string }[];
  /** Checks not run, or not finished, because the pass ran out of time. */
  unfinished: CheckName[];
  cursors: Record<string, string>;
}

export interface PassHooks {
  onRepair?(check: CheckName): void;
  onFailure?(check: CheckName): void;
}

/** One pass of every check: finds, repairs through the owning modules, logs each repair as a row. */
export async function runReconcilePass(platform: ConsistencyPlatform, centre: PaymentCentre, options: { cursors?: Record<string, string>; hooks?: PassHooks } = {}): Promise<PassReport> {
  const deadline = performance.now() + MAX_PASS_MS;
  const ctx: ReconcileContext = { platform, centre, now_ms: platform.now(), cursors: { ...options.cursors } };
  const report: PassReport = { repairs: [], failures: [], unfinished: [], cursors: ctx.cursors };
  const fail = (check: CheckName, key: string, error: unknown) => {
    report.failures.push({ check, key, error: error instanceof Error ? error.message : String(error) });
    options.hooks?.onFailure?.(check);
    platform.log.error({ err: error, check, key, ...orderNoOf(key) }, 'consistency: repair failed; the next pass tries again');
  };
  for (const check of CHECKS) {
    if (performance.now() > deadline) {
      report.unfinished.push(check.name);
      continue;
    }
    const cursorsBefore = { ...ctx.cursors };
    let findings: Finding[];
    try {
      findings = await check.find(ctx);
    } catch (error) {
      fail(check.name, '*', error);
      continue;
    }
    let failed = false;
    for (const finding of findings) {
      if (performance.now() > deadline) {
        report.unfinished.push(check.name);
        failed = true; // what was not repaired is read again next pass
        break;
      }
      try {
        const done = await check.repair(ctx, finding);
        if (!done) continue;
        await recordRepair(platform.db, { check: check.name, key: finding.key, ...done }, platform.now());
        report.repairs.push({ check: check.name, key: finding.key, ...done });
        options.hooks?.onRepair?.(check.name);
        const orderNo = (finding as { orderNo?: string }).orderNo;
        platform.log.warn({ check: check.name, key: finding.key, ...orderNoOf(orderNo ?? finding.key), ...done }, 'consistency: repaired');
      } catch (error) {
        failed = true;
        fail(check.name, finding.key, error);
      }
    }
    // A scan that walks forward goes over the same rows again when a repair among them failed.
    if (failed) Object.assign(ctx.cursors, cursorsBefore);
  }
  if (report.repairs.length > 0) platform.wake();
  return report;
}

function orderNoOf(key: string): { orderNo?: string } {
  return /^\d{23}$/.test(key) ? { orderNo: key } : {};
}

/**
 * The periodic pass as a durable job on the main database. The jobs table's claim makes one
 * worker run it at a time; at its end it schedules its successor, keyed by its own id, so a run
 * that is retried (it crashed after scheduling) schedules the same successor, never a second chain.
 */
export function reconcileJobHandler(platform: ConsistencyPlatform, centre: PaymentCentre, interval_ms: number, hooks?: PassHooks): JobHandler {
  return async (payload: { cursors?: Record<string, string> }, job) => {
    let cursors = payload.cursors ?? {};
    try {
      const report = await runReconcilePass(platform, centre, { cursors, ...(hooks && { hooks }) });
      cursors = report.cursors;
      if (report.repairs.length > 0 || report.failures.length > 0) {
        platform.log.info({ repairs: report.repairs.length, failures: report.failures.length, unfinished: report.unfinished }, 'consistency: pass done');
      }
    } catch (error) {
      platform.log.error({ err: error }, 'consistency: pass failed');
    }
    // The same periodic job keeps the event inbox bounded: rows past any redelivery are pruned.
    try {
      const pruned = await pruneInbox(platform.db, platform.now() - INBOX_RETENTION_MS);
      if (pruned > 0) platform.log.info({ pruned }, 'events: pruned old inbox rows');
    } catch (error) {
      platform.log.error({ err: error }, 'events: inbox pruning failed');
    }
    const now_ms = platform.now();
    await transaction(platform.db, (trx) =>
      scheduleJob(trx, { kind: RECONCILE_JOB, key: `${RECONCILE_JOB}:after:${job.id}`, payload: { cursors }, due_at_ms: now_ms + interval_ms, maxAttempts: RECONCILE_JOB_ATTEMPTS }, now_ms),
    );
  };
}

/**
 * Starts the chain of passes unless one is under way. Called by every process at start: the
 * seed's fixed key lets only one of several starting at once insert it; a chain that died (its
 * last job dead after every attempt) is cleared and started again.
 */
export async function scheduleFirstPass(platform: ConsistencyPlatform, interval_ms: number): Promise<boolean> {
  // Every pass's key starts `consistency.reconcile:` (the seed's and its successors').
  await cancelDeadJobs(platform.db, `${RECONCILE_JOB}:`);
  if (await hasJobs(platform.db, `${RECONCILE_JOB}:`)) return false;
  const now_ms = platform.now();
  await transaction(platform.db, (trx) =>
    scheduleJob(trx, { kind: RECONCILE_JOB, key: `${RECONCILE_JOB}:seed`, payload: { cursors: {} }, due_at_ms: now_ms + interval_ms, maxAttempts: RECONCILE_JOB_ATTEMPTS }, now_ms),
  );
  return true;
}
