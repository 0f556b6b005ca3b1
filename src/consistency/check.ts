import type { EventsTables } from '../events/index.ts';
import type { Platform } from '../platform/context.ts';
import { VERIFY_RESERVATION_AFTER_MS } from '../checkout/index.ts';
import { checkoutStates } from '../orders/index.ts';
import type { OrdersMainTables, OrdersShardTables } from '../orders/index.ts';
import type { PaymentCentre, PaymentsMainTables, PaymentsPlatform, PaymentsShardTables } from '../payments/index.ts';
import type { ConsistencyTables } from './tables.ts';

/** The consistency pass runs on what the payment centre runs on, and keeps its repairs beside. */
export interface ConsistencyPlatform extends Platform<OrdersMainTables & PaymentsMainTables & ConsistencyTables & EventsTables, OrdersShardTables & PaymentsShardTables>, Pick<PaymentsPlatform, 'flashSale'> {}
type OrderShardDb = ConsistencyPlatform['shards']['databases'][number];

/**
 * What a check is: one query (per database) that finds what is broken, and a repair for each
 * finding made through the owning module's own idempotent function. `find` only reads; a
 * finding is re-examined by that function itself (a compare-and-set, a journal dedupe key), so
 * a repair racing the live flow it stands in for does the work once, whoever gets there first.
 */
export interface Check<F extends Finding = Finding> {
  name: CheckName;
  find(ctx: ReconcileContext): Promise<F[]>;
  /** What was done, or undefined when on a second look nothing needed doing. */
  repair(ctx: ReconcileContext, finding: F): Promise<RepairDone | undefined>;
}

export const CHECK_NAMES = ['unapplied_payments', 'overdue_orders', 'orphan_reservations', 'locked_coupons', 'frozen_points', 'ordered_cart_lines'] as const;
export type CheckName = (typeof CHECK_NAMES)[number];

export interface Finding {
  /** What the repair log names: an order number or a pay number. */
  key: string;
}

export interface RepairDone {
  action: string;
  detail?: string;
}

export interface ReconcileContext {
  platform: ConsistencyPlatform;
  centre: PaymentCentre;
  now_ms: number;
  /** Where scans that walk forward through time got to, per check and database (kept between passes). */
  cursors: Record<string, string>;
}

/**
 * Grace periods: nothing younger than these is a problem, so the reconciler never fights a
 * live flow. A checkout's holds are the verification job's to undo first (it runs
 * VERIFY_RESERVATION_AFTER_MS after the reservation, once the idempotency lease has run out);
 * the subscribers of an order event have minutes of retries before their work counts as lost.
 */
export const ORPHAN_GRACE_MS = VERIFY_RESERVATION_AFTER_MS + 2 * 60_000;
export const EVENT_FOLLOW_UP_GRACE_MS = 10 * 60_000;
/** An unpaid order this far past its deadline with no timeout job waiting for it is stuck. */
export const OVERDUE_GRACE_MS = 2 * 60_000;
/** A success recorded this long ago and still not taken to its order (the apply job is due after 30 s). */
export const PAYMENT_APPLY_GRACE_MS = 2 * 60_000;

/** Candidate rows one query reads. */
export const CANDIDATE_BATCH = 500;
/** Most candidate rows one check reads per database in one pass; the walk goes on from there next pass. */
export const MAX_CANDIDATES_PER_CHECK = 2_000;
/** Repairs one check aims at in one pass (it finishes the batch it is in); the rest wait for the next pass. */
export const MAX_REPAIRS_PER_CHECK = 100;

/** The distinct order databases (a URL listed twice is one database). */
export function orderDatabases(platform: ConsistencyPlatform): OrderShardDb[] {
  return [...new Set(platform.shards.databases)];
}

/**
 * Walks a check's candidates in key order, CANDIDATE_BATCH at a time, resuming from where the last
 * pass stopped and starting over after the end. Healthy rows in flight (an unpaid order's
 * reservation, locked coupon, frozen points) are candidates too until they end; walking past
 * them, rather than re-reading the oldest few each pass, keeps them from hiding the broken ones.
 */
export async function walk<R, F>(
  ctx: ReconcileContext,
  cursorKey: string,
  page: (after: string | undefined, limit: number) => Promise<R[]>,
  positionOf: (row: R) => string,
  examine: (rows: R[]) => Promise<F[]>,
): Promise<F[]> {
  const found: F[] = [];
  let after = ctx.cursors[cursorKey];
  for (let scanned = 0; scanned < MAX_CANDIDATES_PER_CHECK && found.length < MAX_REPAIRS_PER_CHECK; ) {
    const rows = await page(after, CANDIDATE_BATCH);
    scanned += rows.length;
    found.push(...(await examine(rows)));
    if (rows.length < CANDIDATE_BATCH) {
      after = undefined; // the end: the next pass starts over
      break;
    }
    after = positionOf(rows[rows.length - 1]!);
  }
  if (after === undefined) delete ctx.cursors[cursorKey];
  else ctx.cursors[cursorKey] = after;
  return found;
}

/** A (time, key) position as a cursor string, and back. */
export const position = (time_ms: number, key: string | number): string => `${time_ms}|${key}`;
export function parsePosition(cursor: string): [number, string] {
  const bar = cursor.indexOf('|');
  return [Number(cursor.slice(0, bar)), cursor.slice(bar + 1)];
}

/**
 * What became of the checkouts holds were taken for (holds are kept under the checkout number):
 * never placed (the checkout died; its holds are orphans), or every order of it cancelled long
 * enough ago that its subscribers should have given everything back. Anything else (live, paid,
 * cancelled a moment ago, not one of our numbers) is left alone.
 */
export type Fate = 'never_placed' | 'cancelled';

export async function checkoutFates(ctx: ReconcileContext, checkoutNos: readonly string[]): Promise<Map<string, Fate>> {
  const fates = new Map<string, Fate>();
  const byShard = new Map<OrderShardDb, string[]>();
  for (const checkoutNo of new Set(checkoutNos)) {
    const shard = ctx.platform.shards.forOrderNo(checkoutNo);
    if (shard) byShard.set(shard, [...(byShard.get(shard) ?? []), checkoutNo]);
  }
  for (const [shard, numbers] of byShard) {
    const states = await checkoutStates(shard, numbers);
    for (const checkoutNo of numbers) {
      const checkout = states.get(checkoutNo);
      if (!checkout) fates.set(checkoutNo, 'never_placed');
      else if (checkout.cancelled_at_ms !== null && checkout.cancelled_at_ms < ctx.now_ms - EVENT_FOLLOW_UP_GRACE_MS) fates.set(checkoutNo, 'cancelled');
    }
  }
  return fates;
}
