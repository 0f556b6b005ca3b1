import { transaction } from '../platform/db/retry.ts';
/**
 * Orders and payments on the order shards: a recorded success never taken to its order, an
 * unpaid order past its deadline that no timeout job will cancel, and cart lines an order
 * should have cleared. Each module says what of its own is stuck, and the function the lost job
 * or event would have run repairs it.
 */
import { linesLeftByOrders, removeOrderedLines, type LeftInCart } from '../cart/index.ts';
import { expireOrder, overdueOrders as overdueOrdersOf, placedOrders } from '../orders/index.ts';
import { applyToOrder, unappliedPayments as unappliedPaymentsOf } from '../payments/index.ts';
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
} from './check.ts';

/**
 * 支付成功 recorded but not taken to the order, and no apply job left to do it (lost, or dead).
 * Runs before the overdue check, so an order whose money arrived is paid, never expired.
 */
export const unappliedPayments: Check<{ key: string; orderNo: string }> = {
  name: 'unapplied_payments',
  async find(ctx) {
    const found: { key: string; orderNo: string }[] = [];
    for (const [index, db] of orderDatabases(ctx.platform).entries()) {
      const page = (after: string | undefined, limit: number) => {
        const from = after === undefined ? undefined : parsePosition(after);
        return unappliedPaymentsOf(db, { succeededBefore_ms: ctx.now_ms - PAYMENT_APPLY_GRACE_MS, after: from && { updated_at_ms: from[0], payNo: from[1] }, limit });
      };
      const examine = async (rows: { payNo: string; orderNo: string; stuck: boolean }[]) => rows.filter((r) => r.stuck).map((r) => ({ key: r.payNo, orderNo: r.orderNo }));
      found.push(...(await walk(ctx, `unapplied_payments:${index}`, page, (r) => position(r.updated_at_ms, r.payNo), examine)));
    }
    return found;
  },
  async repair(ctx, f) {
    const disposition = await applyToOrder(ctx.centre, f.key);
    return disposition ? { action: 'applied_payment', detail: `order ${f.orderNo}: ${disposition}` } : undefined;
  },
};

/** 超时取消 that will never happen: an unpaid order past its deadline with no timeout job waiting. */
export const overdueOrders: Check = {
  name: 'overdue_orders',
  async find(ctx) {
    const found: { key: string }[] = [];
    for (const [index, db] of orderDatabases(ctx.platform).entries()) {
      const page = (after: string | undefined, limit: number) => {
        const from = after === undefined ? undefined : parsePosition(after);
        return overdueOrdersOf(db, { expiredBefore_ms: ctx.now_ms - OVERDUE_GRACE_MS, after: from && { expires_at_ms: from[0], orderNo: from[1] }, limit });
      };
      const examine = async (rows: { orderNo: string; stuck: boolean }[]) => rows.filter((r) => r.stuck).map((r) => ({ key: r.orderNo }));
      found.push(...(await walk(ctx, `overdue_orders:${index}`, page, (r) => position(r.expires_at_ms, r.orderNo), examine)));
    }
    return found;
  },
  async repair(ctx, f) {
    return (await expireOrder(ctx.platform, f.key)) === 'cancelled' ? { action: 'expired_order', detail: 'payment timeout passed with no timeout job' } : undefined;
  },
};

/** How far back the cart check looks when it has no cursor yet (a first pass, a new database). */
export const CART_CHECK_LOOKBACK_MS = 24 * 3600_000;
/** Most orders the cart check reads per database in one pass, and per query. */
export const MAX_ORDERS_SCANNED_PER_PASS = 2_000;
export const CART_SCAN_BATCH = 200;

type CartFinding = LeftInCart & { key: string };

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
    for (const [index, db] of orderDatabases(ctx.platform).entries()) {
      const cursorKey = `ordered_cart_lines:${index}`;
      let after = ctx.cursors[cursorKey] ?? orderNoFloor(ctx.now_ms - CART_CHECK_LOOKBACK_MS);
      for (let scanned = 0; scanned < MAX_ORDERS_SCANNED_PER_PASS && found.length < MAX_REPAIRS_PER_CHECK; ) {
        const orders = await placedOrders(db, { afterOrderNo: after, beforeOrderNo: until, limit: CART_SCAN_BATCH });
        if (orders.length === 0) break;
        scanned += orders.length;
        found.push(...(await linesLeftByOrders(ctx.platform.db, orders)).map((left) => ({ key: left.orderNo, ...left })));
        after = orders[orders.length - 1]!.orderNo;
      }
      ctx.cursors[cursorKey] = after;
    }
    return found;
  },
  async repair(ctx, f) {
    const removed = await transaction(ctx.platform.db, (trx) => removeOrderedLines(trx, f.buyerId, f.activitySkuIds, f.placed_at_ms));
    return removed > 0 ? { action: 'removed_cart_lines', detail: `${removed} lines` } : undefined;
  },
};
