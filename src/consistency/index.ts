/**
 * The consistency reconciler (兜底对账): a periodic pass that finds what a crash left half done
 * across modules and repairs it through each owning module's own idempotent function, logging
 * every repair as a row. See check.ts for what counts as a problem and the grace periods.
 */
export { CANDIDATE_BATCH, CHECK_NAMES, EVENT_FOLLOW_UP_GRACE_MS, MAX_CANDIDATES_PER_CHECK, MAX_REPAIRS_PER_CHECK, ORPHAN_GRACE_MS, OVERDUE_GRACE_MS, PAYMENT_APPLY_GRACE_MS, type CheckName } from './check.ts';
export { CART_CHECK_LOOKBACK_MS, CART_SCAN_BATCH, MAX_ORDERS_SCANNED_PER_PASS } from './orders.ts';
export { CHECKS, MAX_PASS_MS, RECONCILE_INTERVAL_MS, RECONCILE_JOB, reconcileJobHandler, runReconcilePass, scheduleFirstPass, type PassHooks, type PassReport } from './pass.ts';
export { MAX_REPAIRS_LISTED, recentRepairs, type Repair } from './repairs.ts';
export type * from './tables.ts';
