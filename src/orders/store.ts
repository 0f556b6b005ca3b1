import { sql, type Transaction } from 'kysely';
import { dialectOf } from '../platform/db/database.ts';
import type { CheckoutRow, OrderLineRow, OrderRow } from './tables.ts';
import { affected, ignoreDuplicates } from '../platform/db/sql.ts';
import { AppError, assert } from '../platform/errors.ts';
import { compareAndSet } from '../platform/db/compare-and-set.ts';
import { ORDER_STATE_TABLE, type OrderStatus } from './state.ts';
import type { OrdersDb, OrdersTransaction } from './tables.ts';

/** Most orders one page of "my orders" returns. */
export const MAX_ORDERS_PAGE = 50;

export interface OrderLine {
  lineNo: number;
  activityId: number;
  activitySkuId: number;
  skuId: number;
  merchantId: number;
  title: string;
  inventoryMode: string;
  unitPrice_fen: number;
  quantity: number;
  subtotal_fen: number;
  discount_fen: number;
  platformFunded_fen: number;
  merchantFunded_fen: number;
  shipping_fen: number;
  payable_fen: number;
  refunded_at_ms: number | null;
  discounts: { source: string; id: string; amount_fen: number; funder?: string }[];
  segments: { quantity: number; unitPrice_fen: number; basis: string }[];
}

export interface Order {
  orderNo: string;
  checkoutNo: string;
  merchantId: number;
  buyerId: number;
  leaderId: number;
  status: OrderStatus;
  version: number;
  currency: string;
  itemsTotal_fen: number;
  discountTotal_fen: number;
  shipping_fen: number;
  payable_fen: number;
  couponIds: number[];
  pointsUsed: number;
  remark: string | null;
  paymentNo: string | null;
  paid_fen: number | null;
  refunded_fen: number;
  cancelReason: string | null;
  created_at_ms: number;
  updated_at_ms: number;
  expires_at_ms: number;
  paid_at_ms: number | null;
  cancelled_at_ms: number | null;
  lines: OrderLine[];
}

export function toOrder(r: OrderRow, lines: OrderLineRow[]): Order {
  return {
    orderNo: r.order_no,
    checkoutNo: r.checkout_no,
    merchantId: Number(r.merchant_id),
    buyerId: r.buyer_id,
    leaderId: r.leader_id,
    status: r.status as OrderStatus,
    version: r.version,
    currency: r.currency,
    itemsTotal_fen: r.items_total_fen,
    discountTotal_fen: r.discount_total_fen,
    shipping_fen: r.shipping_fen,
    payable_fen: r.payable_fen,
    couponIds: r.coupon_ids ? JSON.parse(r.coupon_ids) : [],
    pointsUsed: r.points_used,
    remark: r.remark,
    paymentNo: r.payment_no,
    paid_fen: r.paid_fen,
    refunded_fen: Number(r.refunded_fen),
    cancelReason: r.cancel_reason,
    created_at_ms: r.created_at_ms,
    updated_at_ms: r.updated_at_ms,
    expires_at_ms: r.expires_at_ms,
    paid_at_ms: r.paid_at_ms,
    cancelled_at_ms: r.cancelled_at_ms,
    lines: lines.map((l) => ({
      lineNo: l.line_no,
      activityId: l.activity_id,
      activitySkuId: l.activity_sku_id,
      skuId: l.sku_id,
      merchantId: l.merchant_id,
      title: l.title,
      inventoryMode: l.inventory_mode,
      unitPrice_fen: l.unit_price_fen,
      quantity: l.quantity,
      subtotal_fen: l.subtotal_fen,
      discount_fen: l.discount_fen,
      platformFunded_fen: Number(l.platform_funded_fen),
      merchantFunded_fen: Number(l.merchant_funded_fen),
      shipping_fen: l.shipping_fen,
      payable_fen: l.payable_fen,
      refunded_at_ms: l.refunded_at_ms === null ? null : Number(l.refunded_at_ms),
      discounts: l.discounts ? JSON.parse(l.discounts) : [],
      segments: l.price_segments ? JSON.parse(l.price_segments) : [{ quantity: l.quantity, unitPrice_fen: l.unit_price_fen, basis: 'activity' }],
    })),
  };
}

/** A checkout: the buyer's one submission, and its orders, one per merchant (by merchant id). */
export interface Checkout {
  checkoutNo: string;
  buyerId: number;
  leaderId: number;
  currency: string;
  itemsTotal_fen: number;
  discountTotal_fen: number;
  shipping_fen: number;
  payable_fen: number;
  couponIds: number[];
  pointsUsed: number;
  created_at_ms: number;
  expires_at_ms: number;
  orders: Order[];
}

export function toCheckout(r: CheckoutRow, orders: Order[]): Checkout {
  return {
    checkoutNo: r.checkout_no,
    buyerId: r.buyer_id,
    leaderId: r.leader_id,
    currency: r.currency,
    itemsTotal_fen: r.items_total_fen,
    discountTotal_fen: r.discount_total_fen,
    shipping_fen: r.shipping_fen,
    payable_fen: r.payable_fen,
    couponIds: r.coupon_ids ? JSON.parse(r.coupon_ids) : [],
    pointsUsed: r.points_used,
    created_at_ms: r.created_at_ms,
    expires_at_ms: r.expires_at_ms,
    orders,
  };
}

/** The checkout, then its orders and their lines: three statements however many merchants it has. */
export async function insertCheckout(trx: OrdersTransaction, checkout: CheckoutRow, orders: readonly OrderRow[], lines: readonly OrderLineRow[]): Promise<void> {
  assert(orders.length === checkout.order_count && orders.length > 0, 'a checkout is written with all its orders');
  await trx.insertInto('checkouts').values(checkout).execute();
  await trx.insertInto('orders').values([...orders]).execute();
  await trx.insertInto('order_lines').values([...lines]).execute();
}

export async function findCheckout(db: OrdersDb | OrdersTransaction, checkoutNo: string): Promise<Checkout | undefined> {
  const row = await db.selectFrom('checkouts').selectAll().where('checkout_no', '=', checkoutNo).executeTakeFirst();
  if (!row) return undefined;
  return toCheckout(row, await ordersOfCheckouts(db, [checkoutNo]));
}

/** The orders of some checkouts, with their lines, by checkout then merchant. */
async function ordersOfCheckouts(db: OrdersDb | OrdersTransaction, checkoutNos: readonly string[]): Promise<Order[]> {
  const rows = await db.selectFrom('orders').selectAll().where('checkout_no', 'in', [...checkoutNos]).orderBy('checkout_no').orderBy('merchant_id').orderBy('order_no').execute();
  return withLines(db, rows);
}

/** Orders with their lines, in one more statement however many there are. */
async function withLines(db: OrdersDb | OrdersTransaction, rows: readonly OrderRow[]): Promise<Order[]> {
  if (rows.length === 0) return [];
  const lines = await db
    .selectFrom('order_lines')
    .selectAll()
    .where('order_no', 'in', rows.map((r) => r.order_no))
    .orderBy('order_no')
    .orderBy('line_no')
    .execute();
  return rows.map((r) => toOrder(r, lines.filter((l) => l.order_no === r.order_no)));
}

/**
 * The checkout read again under its row's lock, inside the transaction that changes its orders:
 * cancels and refunds of one checkout's orders take turns, so each sees the ones before it
 * (SQLite has one writer at a time already).
 */
export async function lockCheckout(trx: OrdersTransaction, checkoutNo: string): Promise<Checkout | undefined> {
  let query = trx.selectFrom('checkouts').selectAll().where('checkout_no', '=', checkoutNo);
  if (dialectOf(trx) !== 'sqlite') query = query.forUpdate();
  const row = await query.executeTakeFirst();
  if (!row) return undefined;
  return toCheckout(row, await ordersOfCheckouts(trx, [checkoutNo]));
}

/** What of a checkout is given up so far: its cancelled orders' payable, and the refunded lines of the others. */
export function closedPayable_fen(checkout: Pick<Checkout, 'orders'>): number {
  let closed = 0;
  for (const order of checkout.orders) {
    if (order.status === 'CANCELLED') closed += order.payable_fen;
    else for (const line of order.lines) if (line.refunded_at_ms !== null) closed += line.payable_fen;
  }
  return closed;
}

/** The buyer's checkouts, newest first, each with its orders; the last checkout number seen is the cursor. */
export async function listBuyerCheckouts(db: OrdersDb, buyerId: number, page: { limit: number; beforeCheckoutNo?: string }): Promise<Checkout[]> {
  assert(page.limit > 0 && page.limit <= MAX_ORDERS_PAGE, 'checkout page size out of range');
  let query = db.selectFrom('checkouts').selectAll().where('buyer_id', '=', buyerId);
  if (page.beforeCheckoutNo !== undefined) query = query.where('checkout_no', '<', page.beforeCheckoutNo);
  const rows = await query.orderBy('checkout_no', 'desc').limit(page.limit).execute();
  if (rows.length === 0) return [];
  const orders = await ordersOfCheckouts(db, rows.map((r) => r.checkout_no));
  return rows.map((r) => toCheckout(r, orders.filter((o) => o.checkoutNo === r.checkout_no)));
}

export async function findOrder(db: OrdersDb | OrdersTransaction, orderNo: string): Promise<Order | undefined> {
  const row = await db.selectFrom('orders').selectAll().where('order_no', '=', orderNo).executeTakeFirst();
  if (!row) return undefined;
  const lines = await db.selectFrom('order_lines').selectAll().where('order_no', '=', orderNo).orderBy('line_no').execute();
  return toOrder(row, lines);
}

/**
 * What became of many checkouts on one shard, by checkout number (the consistency pass's batch
 * look-up of the numbers holds are kept under): absent ones were never placed; `cancelled_at_ms`
 * is set when every order of the checkout is cancelled, to the last of those cancels.
 */
export async function checkoutStates(db: OrdersDb, checkoutNos: readonly string[]): Promise<Map<string, { cancelled_at_ms: number | null }>> {
  if (checkoutNos.length === 0) return new Map();
  const rows = await db.selectFrom('orders').select(['checkout_no', 'status', 'updated_at_ms', 'cancelled_at_ms']).where('checkout_no', 'in', [...checkoutNos]).execute();
  const states = new Map<string, { cancelled_at_ms: number | null; live: boolean }>();
  for (const r of rows) {
    const known = states.get(r.checkout_no) ?? { cancelled_at_ms: 0, live: false };
    const live = known.live || r.status !== 'CANCELLED';
    states.set(r.checkout_no, { live, cancelled_at_ms: Math.max(known.cancelled_at_ms ?? 0, Number(r.cancelled_at_ms ?? r.updated_at_ms)) });
  }
  return new Map([...states].map(([checkoutNo, state]) => [checkoutNo, { cancelled_at_ms: state.live ? null : state.cancelled_at_ms }]));
}

/** Newest first. Order numbers are time-ordered and unique, so the last one seen is the cursor. */
export async function listBuyerOrders(db: OrdersDb, buyerId: number, page: { limit: number; beforeOrderNo?: string }): Promise<Order[]> {
  assert(page.limit > 0 && page.limit <= MAX_ORDERS_PAGE, 'order page size out of range');
  let query = db.selectFrom('orders').selectAll().where('buyer_id', '=', buyerId);
  if (page.beforeOrderNo !== undefined) query = query.where('order_no', '<', page.beforeOrderNo);
  return withLines(db, await query.orderBy('order_no', 'desc').limit(page.limit).execute());
}

/**
 * The only way an order's status changes: a compare-and-set naming the expected status and
 * version. Losing the race is the named `order_state_conflict`, never a silent overwrite.
 */
export async function transitionOrder(
  trx: OrdersTransaction,
  order: Pick<Order, 'orderNo' | 'status' | 'version'>,
  to: OrderStatus,
  changes: Partial<Pick<OrderRow, 'payment_no' | 'paid_fen' | 'paid_at_ms' | 'cancel_reason' | 'cancelled_at_ms'>>,
  now_ms: number,
): Promise<void> {
  const changed = await compareAndSet(trx, ORDER_STATE_TABLE, { order_no: order.orderNo }, { state: order.status, version: order.version }, to, { ...changes, updated_at_ms: now_ms });
  if (!changed) throw new AppError('order_state_conflict', { details: { orderNo: order.orderNo } });
}

/** One line of a cart as the purchase counters see it; limit null: none. */
export interface CountedLine {
  activitySkuId: number;
  quantity: number;
  limit: number | null;
}

/**
 * 限购 across the buyer's live orders: a counter per (buyer, activity SKU) raised in the
 * order's transaction by a conditional write, lowered when the order is cancelled. The whole
 * cart is counted at once; returns the index of the first line whose limit would be passed
 * (the caller's transaction is then rolled back, undoing the rest), or undefined.
 */
export async function countPurchases(trx: OrdersTransaction, buyerId: number, lines: readonly CountedLine[]): Promise<number | undefined> {
  // A first purchase is inserted unchecked, so a line over its limit on its own is refused here.
  const overAlone = lines.map((line) => line.limit !== null && line.quantity > line.limit);
  const counted = lines.filter((_, i) => !overAlone[i]);
  const refused = counted.length === 0 ? new Set<number>() : await refusedLines(trx, buyerId, counted);
  const first = lines.findIndex((line, i) => overAlone[i] || refused.has(line.activitySkuId));
  return first === -1 ? undefined : first;
}

/** Counts the lines in one statement (three on MySQL, which has no upsert that returns); the activity SKUs whose limit refused them. */
async function refusedLines(trx: OrdersTransaction, buyerId: number, lines: readonly CountedLine[]): Promise<Set<number>> {
  const limited = lines.filter((line) => line.limit !== null);
  const limitOf = (column: string) =>
    sql`case ${sql.ref(column)} ${sql.join(limited.map((line) => sql`when ${line.activitySkuId} then cast(${line.limit} as bigint)`), sql` `)} end`;
  if (dialectOf(trx) !== 'mysql') {
    // Insert the first purchases, or add to the counters while under their limits.
    const rows = await trx
      .insertInto('purchase_counters')
      .values(lines.map((line) => ({ buyer_id: buyerId, activity_sku_id: line.activitySkuId, quantity: line.quantity })))
      .onConflict((oc) => {
        const add = oc.columns(['buyer_id', 'activity_sku_id']).doUpdateSet({ quantity: sql`purchase_counters.quantity + excluded.quantity` });
        return limited.length === 0
          ? add
          : add.where(sql<boolean>`coalesce(purchase_counters.quantity + excluded.quantity <= ${limitOf('purchase_counters.activity_sku_id')}, true)`);
      })
      .returning('activity_sku_id')
      .execute();
    const counted = new Set(rows.map((row) => Number(row.activity_sku_id)));
    return new Set(lines.filter((line) => !counted.has(line.activitySkuId)).map((line) => line.activitySkuId));
  }
  const ids = lines.map((line) => line.activitySkuId);
  await trx
    .insertInto('purchase_counters')
    .values(lines.map((line) => ({ buyer_id: buyerId, activity_sku_id: line.activitySkuId, quantity: 0 })))
    .$call(ignoreDuplicates(trx))
    .execute();
  const current = await trx.selectFrom('purchase_counters').select(['activity_sku_id', 'quantity']).where('buyer_id', '=', buyerId).where('activity_sku_id', 'in', ids).forUpdate().execute();
  const counter = new Map(current.map((row) => [row.activity_sku_id, row.quantity]));
  const refused = new Set(limited.filter((line) => counter.get(line.activitySkuId)! + line.quantity > line.limit!).map((line) => line.activitySkuId));
  if (refused.size > 0) return refused;
  const raised = await trx
    .updateTable('purchase_counters')
    .set({ quantity: sql`quantity + (case activity_sku_id ${sql.join(lines.map((line) => sql`when ${line.activitySkuId} then ${line.quantity}`), sql` `)} end)` })
    .where('buyer_id', '=', buyerId)
    .where('activity_sku_id', 'in', ids)
    .executeTakeFirst();
  assert(affected(raised) === lines.length, () => `purchase counters of buyer ${buyerId} moved under their lock`);
  return refused;
}

export async function uncountPurchase(trx: OrdersTransaction, buyerId: number, activitySkuId: number, quantity: number): Promise<void> {
  const result = await trx
    .updateTable('purchase_counters')
    .set({ quantity: sql`quantity - ${quantity}` })
    .where('buyer_id', '=', buyerId)
    .where('activity_sku_id', '=', activitySkuId)
    .where('quantity', '>=', quantity)
    .executeTakeFirst();
  assert(affected(result) === 1, () => `purchase counter of buyer ${buyerId} for ${activitySkuId} would go negative`);
}

export async function purchasedQuantity(db: OrdersDb, buyerId: number, activitySkuId: number): Promise<number> {
  const row = await db
    .selectFrom('purchase_counters')
    .select('quantity')
    .where('buyer_id', '=', buyerId)
    .where('activity_sku_id', '=', activitySkuId)
    .executeTakeFirst();
  return row?.quantity ?? 0;
}
