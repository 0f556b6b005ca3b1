/**
 * Orders and payments on the order shards: a recorded success never taken to its order, an
 * unpaid order past its deadline that no timeout job will cancel, and cart lines an order
 * should have cleared. Each is repaired by the function the lost job or event would have run.
 */
import { removeOrderedLines } from '../cart/index.ts';
import { expireJobKey, expireOrder } from '../orders/index.ts';
import { applyToOrder, PAYMENT_APPLY_JOB } from '../payments/index.ts';
import type { ConsistencyPlatform } from './check.ts';
type Db = ConsistencyPlatform['shards']['databases'][number];
import { orderNoFloor } from '../platform/ids.ts';
import {
  EVENT_FOLLOW_UP_GRACE_MS,
  MAX_REPAIRS_PER_CHECK,
  orderDatabases,
  OVERDUE_GRACE_MS,
  parsePosition,
  PAYMENT_APPLY_GRACE_MS,
  position,
  walk,
  type Check,
  type ReconcileContext,
} from './check.ts';

/** Of these job keys, the ones a worker will still run (present and not dead). */
async function waitingJobs(db: Db, keys: string[]): Promise<Set<string>> {
  if (keys.length === 0) return new Set();
  const rows = await db.selectFrom('jobs').select('job_key').where('job_key', 'in', keys).where('dead_at_ms', 'is', null).execute();
  return new Set(rows.map((r) => r.job_key));
}

const applyJobKey = (payNo: string) => `${PAYMENT_APPLY_JOB}:${payNo}`;

/**
 * 支付成功 recorded but not taken to the order, and no apply job left to do it (lost, or dead).
 * Runs before the overdue check, so an order whose money arrived is paid, never expired.
 */
export const unappliedPayments: Check<{ key: string; orderNo: string }> = {
  name: 'unapplied_payments',
  async find(ctx) {
    const found: { key: string; orderNo: string }[] = [];
    for (const [index, db] of orderDatabases(ctx.p).entries()) {
      const page = (after: string | undefined, limit: number) => {
        let query = db
          .selectFrom('payment_orders')
          .select(['pay_no', 'order_no', 'updated_at_ms'])
          .where('status', '=', 'SUCCEEDED')
          .where('disposition', 'is', null)
          .where('updated_at_ms', '<', ctx.now_ms - PAYMENT_APPLY_GRACE_MS);
        if (after !== undefined) {
          const [t, payNo] = parsePosition(after);
          query = query.where((eb) => eb.or([eb('updated_at_ms', '>', t), eb.and([eb('updated_at_ms', '=', t), eb('pay_no', '>', payNo)])]));
        }
        return query.orderBy('updated_at_ms').orderBy('pay_no').limit(limit).execute();
      };
      const examine = async (rows: { pay_no: string; order_no: string }[]) => {
        const waiting = await waitingJobs(db, rows.map((r) => applyJobKey(r.pay_no)));
        return rows.filter((r) => !waiting.has(applyJobKey(r.pay_no))).map((r) => ({ key: r.pay_no, orderNo: r.order_no }));
      };
      found.push(...(await walk(ctx, `unapplied_payments:${index}`, page, (r) => position(r.updated_at_ms, r.pay_no), examine)));
    }
    return found;
  },
  async repair(ctx, f) {
    const disposition = await applyToOrder(ctx.pc, f.key);
    return disposition ? { action: 'applied_payment', detail: `order ${f.orderNo}: ${disposition}` } : undefined;
  },
};

/** 超时取消 that will never happen: an unpaid order past its deadline with no timeout job waiting. */
export const overdueOrders: Check = {
  name: 'overdue_orders',
  async find(ctx) {
    const found: { key: string }[] = [];
    for (const [index, db] of orderDatabases(ctx.p).entries()) {
      const page = (after: string | undefined, limit: number) => {
        let query = db.selectFrom('orders').select(['order_no', 'expires_at_ms']).where('status', '=', 'PENDING_PAYMENT').where('expires_at_ms', '<', ctx.now_ms - OVERDUE_GRACE_MS);
        if (after !== undefined) {
          const [t, orderNo] = parsePosition(after);
          query = query.where((eb) => eb.or([eb('expires_at_ms', '>', t), eb.and([eb('expires_at_ms', '=', t), eb('order_no', '>', orderNo)])]));
        }
        return query.orderBy('expires_at_ms').orderBy('order_no').limit(limit).execute();
      };
      // A job that is merely late (workers busy, retrying) will still do it.
      const examine = async (rows: { order_no: string }[]) => {
        const waiting = await waitingJobs(db, rows.map((r) => expireJobKey(r.order_no)));
        return rows.filter((r) => !waiting.has(expireJobKey(r.order_no))).map((r) => ({ key: r.order_no }));
      };
      found.push(...(await walk(ctx, `overdue_orders:${index}`, page, (r) => position(r.expires_at_ms, r.order_no), examine)));
    }
    return found;
  },
  async repair(ctx, f) {
    return (await expireOrder(ctx.p, f.key)) === 'cancelled' ? { action: 'expired_order', detail: 'payment timeout passed with no timeout job' } : undefined;
  },
};

/** How far back the cart check looks when it has no cursor yet (a first pass, a new database). */
export const CART_CHECK_LOOKBACK_MS = 24 * 3600_000;
/** Most orders the cart check reads per database in one pass, and per query. */
export const MAX_ORDERS_SCANNED_PER_PASS = 2_000;
export const CART_SCAN_BATCH = 200;

interface CartFinding {
  key: string;
  buyerId: number;
  activitySkuIds: number[];
  placed_at_ms: number;
}

/**
 * Cart lines of placed orders still in the cart (the order.placed subscriber's work lost). Orders
 * are read once each, in order-number (= time) order, after EVENT_FOLLOW_UP_GRACE_MS: the cursor
 * of where the scan got to is carried from pass to pass. A line the buyer added again after the
 * order is theirs and stays — the same rule removeOrderedLines applies.
 */
export const orderedCartLines: Check<CartFinding> = {
  name: 'ordered_cart_lines',
  async find(ctx) {
    const found: CartFinding[] = [];
    const until = orderNoFloor(ctx.now_ms - EVENT_FOLLOW_UP_GRACE_MS);
    for (const [index, db] of orderDatabases(ctx.p).entries()) {
      const cursorKey = `ordered_cart_lines:${index}`;
      let after = ctx.cursors[cursorKey] ?? orderNoFloor(ctx.now_ms - CART_CHECK_LOOKBACK_MS);
      for (let scanned = 0; scanned < MAX_ORDERS_SCANNED_PER_PASS && found.length < MAX_REPAIRS_PER_CHECK; ) {
        const orders = await db
          .selectFrom('orders')
          .select(['order_no', 'buyer_id', 'created_at_ms'])
          .where('order_no', '>', after)
          .where('order_no', '<', until)
          .orderBy('order_no')
          .limit(CART_SCAN_BATCH)
          .execute();
        if (orders.length === 0) break;
        scanned += orders.length;
        found.push(...(await leftInCarts(ctx, db, orders)));
        after = orders[orders.length - 1]!.order_no;
      }
      ctx.cursors[cursorKey] = after;
    }
    return found;
  },
  async repair(ctx, f) {
    const removed = await removeOrderedLines(ctx.p.db, f.buyerId, f.activitySkuIds, f.placed_at_ms);
    return removed > 0 ? { action: 'removed_cart_lines', detail: `${removed} lines` } : undefined;
  },
};

async function leftInCarts(ctx: ReconcileContext, shard: Db, orders: { order_no: string; buyer_id: number; created_at_ms: number }[]): Promise<CartFinding[]> {
  const lines = await shard.selectFrom('order_lines').select(['order_no', 'activity_sku_id']).where('order_no', 'in', orders.map((o) => o.order_no)).execute();
  const cart = await ctx.p.db
    .selectFrom('cart_lines')
    .select(['buyer_id', 'activity_sku_id', 'updated_at_ms'])
    .where('buyer_id', 'in', [...new Set(orders.map((o) => o.buyer_id))])
    .execute();
  const found: CartFinding[] = [];
  for (const order of orders) {
    const skus = new Set(lines.filter((l) => l.order_no === order.order_no).map((l) => l.activity_sku_id));
    const left = cart.filter((c) => c.buyer_id === order.buyer_id && skus.has(c.activity_sku_id) && c.updated_at_ms <= order.created_at_ms);
    if (left.length > 0) found.push({ key: order.order_no, buyerId: order.buyer_id, activitySkuIds: left.map((c) => c.activity_sku_id), placed_at_ms: order.created_at_ms });
  }
  return found;
}
