import { waitingJobKeys } from '../jobs/index.ts';

import { expireJobKey } from './events.ts';
import type { OrdersDb } from './tables.ts';

/**
 * What of the orders' can be left stuck by a crash, for the consistency pass: an unpaid order past
 * its deadline that no timeout job will cancel (`expireOrder` repairs it), and the placed orders
 * other modules check their own follow-up work against (the cart's lines an order should clear).
 */

/** Where a walk over overdue orders got to: (expires_at_ms, order_no) of the last one read. */
export interface OverduePosition {
  expires_at_ms: number;
  orderNo: string;
}

/**
 * Unpaid orders of this shard whose payment deadline passed before `expiredBefore_ms`, in
 * (expires_at_ms, order number) order after `after`; `stuck` when no timeout job is waiting for
 * it (a job that is merely late, its workers busy or retrying, will still do it).
 */
export async function overdueOrders(
  shard: OrdersDb,
  query: { expiredBefore_ms: number; after?: OverduePosition | undefined; limit: number },
): Promise<{ orderNo: string; expires_at_ms: number; stuck: boolean }[]> {
  let select = shard.selectFrom('orders').select(['order_no', 'checkout_no', 'expires_at_ms']).where('status', '=', 'PENDING_PAYMENT').where('expires_at_ms', '<', query.expiredBefore_ms);
  const { after } = query;
  if (after !== undefined) {
    select = select.where((eb) =>
      eb.or([eb('expires_at_ms', '>', after.expires_at_ms), eb.and([eb('expires_at_ms', '=', after.expires_at_ms), eb('order_no', '>', after.orderNo)])]),
    );
  }
  const rows = await select.orderBy('expires_at_ms').orderBy('order_no').limit(query.limit).execute();
  // The timeout job is the checkout's.
  const waiting = await waitingJobKeys(shard, [...new Set(rows.map((r) => expireJobKey(r.checkout_no)))]);
  return rows.map((r) => ({ orderNo: r.order_no, expires_at_ms: r.expires_at_ms, stuck: !waiting.has(expireJobKey(r.checkout_no)) }));
}

export interface PlacedOrder {
  orderNo: string;
  buyerId: number;
  placed_at_ms: number;
  activitySkuIds: number[];
}

/** Orders of this shard with numbers in (afterOrderNo, beforeOrderNo), in number (= time) order, with the activity SKUs of their lines. */
export async function placedOrders(shard: OrdersDb, query: { afterOrderNo: string; beforeOrderNo: string; limit: number }): Promise<PlacedOrder[]> {
  const orders = await shard
    .selectFrom('orders')
    .select(['order_no', 'buyer_id', 'created_at_ms'])
    .where('order_no', '>', query.afterOrderNo)
    .where('order_no', '<', query.beforeOrderNo)
    .orderBy('order_no')
    .limit(query.limit)
    .execute();
  if (orders.length === 0) return [];
  const lines = await shard.selectFrom('order_lines').select(['order_no', 'activity_sku_id']).where('order_no', 'in', orders.map((o) => o.order_no)).execute();
  return orders.map((o) => ({
    orderNo: o.order_no,
    buyerId: o.buyer_id,
    placed_at_ms: o.created_at_ms,
    activitySkuIds: [...new Set(lines.filter((l) => l.order_no === o.order_no).map((l) => l.activity_sku_id))],
  }));
}
