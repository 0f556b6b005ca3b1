/**
 * The database side of 秒杀. The database stays the system of record: every unit Redis grants
 * is first written here as a `pending` reservation of the order (before Redis is asked), so
 * whatever Redis forgets can be rebuilt from here, and the units Redis may grant are always at
 * most `available − pending` of the stock row.
 */
import type { Transaction } from 'kysely';
import { dialectOf } from '../../platform/db/database.ts';
import { transaction } from '../../platform/db/retry.ts';
import { assert } from '../../platform/errors.ts';
import { moveUnits } from '../reservations.ts';
import { inLockOrder, moveReservation } from '../stock-items.ts';
import type { InventoryDb, InventoryTransaction } from '../tables.ts';

export interface FlashSaleItem {
  activityId: number;
  activitySkuId: number;
  quantity: number;
  /** 限购 per buyer across live orders; null: none. */
  purchaseLimit: number | null;
}

/** Inside the reservation's transaction, before Redis is asked: the order's hot units, pending. */
export async function recordPendingReservations(trx: InventoryTransaction, orderNo: string, buyerId: number, items: readonly FlashSaleItem[], now_ms: number): Promise<void> {
  if (items.length === 0) return;
  for (const item of items) assert(Number.isSafeInteger(item.quantity) && item.quantity > 0, 'reserve a positive quantity');
  await trx
    .insertInto('stock_reservations')
    .values(
      inLockOrder(items).map((item) => ({
        order_no: orderNo,
        activity_sku_id: item.activitySkuId,
        quantity: item.quantity,
        state: 'pending',
        buyer_id: buyerId,
        created_at_ms: now_ms,
        updated_at_ms: now_ms,
      })),
    )
    .execute();
}

/**
 * The order exists (order.placed): its pending units move from available to reserved in the stock
 * row, once, in the caller's transaction. Runs in the relay, one order after another, so the hot row sees no contention.
 */
export async function applyPendingReservations(trx: InventoryTransaction, orderNo: string, now_ms: number): Promise<number> {
  const pending = await trx
    .selectFrom('stock_reservations')
    .select(['activity_sku_id', 'quantity'])
    .where('order_no', '=', orderNo)
    .where('state', '=', 'pending')
    .orderBy('activity_sku_id')
    .execute();
  let moved = 0;
  for (const r of pending) {
    if (!(await moveReservation(trx, orderNo, r.activity_sku_id, 'pending', 'reserved', now_ms))) continue;
    await moveUnits(trx, r.activity_sku_id, r.quantity, 'available', 'reserved', now_ms);
    moved += r.quantity;
  }
  return moved;
}

/** The order's reservations that Redis holds too: open ones on SKUs gated by a flash sale, by activity. */
export async function gatedReservationsOf(db: InventoryDb, orderNo: string): Promise<Map<number, number[]>> {
  const rows = await db
    .selectFrom('stock_reservations as r')
    .innerJoin('stock as s', 's.activity_sku_id', 'r.activity_sku_id')
    .select(['s.flash_sale_activity_id', 'r.activity_sku_id'])
    .where('r.order_no', '=', orderNo)
    .where('r.state', 'in', ['pending', 'reserved'])
    .where('s.flash_sale_activity_id', 'is not', null)
    .execute();
  const byActivity = new Map<number, number[]>();
  for (const r of rows) byActivity.set(r.flash_sale_activity_id!, [...(byActivity.get(r.flash_sale_activity_id!) ?? []), r.activity_sku_id]);
  return byActivity;
}

export interface OpenReservation {
  orderNo: string;
  activitySkuId: number;
  quantity: number;
  state: 'pending' | 'reserved' | 'confirmed' | 'returning';
  buyerId: number | null;
}

export interface LoadSnapshot {
  available: Map<number, number>;
  open: OpenReservation[];
}

/**
 * Gates the SKUs (from now on the database path refuses to take their available units) and reads
 * what a load needs, in one transaction. The gate's update locks the stock rows first, so no
 * reservation can move between the two reads: `available` and the pending set agree.
 */
export async function gateAndSnapshot(db: InventoryDb, activityId: number, activitySkuIds: readonly number[]): Promise<LoadSnapshot> {
  if (activitySkuIds.length === 0) return { available: new Map(), open: [] };
  return transaction(db, async (trx) => {
    await trx.updateTable('stock').set({ flash_sale_activity_id: activityId }).where('activity_sku_id', 'in', [...activitySkuIds]).execute();
    const stock = await trx.selectFrom('stock').select(['activity_sku_id', 'available']).where('activity_sku_id', 'in', [...activitySkuIds]).execute();
    const open = await trx
      .selectFrom('stock_reservations')
      .select(['order_no', 'activity_sku_id', 'quantity', 'state', 'buyer_id'])
      .where('activity_sku_id', 'in', [...activitySkuIds])
      .where('state', 'in', ['pending', 'reserved', 'confirmed', 'returning'])
      .execute();
    return {
      available: new Map(stock.map((s) => [s.activity_sku_id, s.available])),
      open: open.map((r) => ({ orderNo: r.order_no, activitySkuId: r.activity_sku_id, quantity: r.quantity, state: r.state as OpenReservation['state'], buyerId: r.buyer_id })),
    };
  });
}

type UnitsOfOrders = Map<number, { orderNo: string; quantity: number }[]>;

/**
 * The reconciler's view: pending and returning reservations first, then the stock rows, outside a
 * transaction. In that order a reservation applied (or a return made) between the reads is seen
 * in one and not the other; the second measurement, which must agree, catches it.
 */
export async function reconcileSnapshot(db: InventoryDb, activitySkuIds: readonly number[]): Promise<{ available: Map<number, number>; pending: UnitsOfOrders; returning: UnitsOfOrders }> {
  const rows = await db
    .selectFrom('stock_reservations')
    .select(['order_no', 'activity_sku_id', 'quantity', 'state'])
    .where('activity_sku_id', 'in', [...activitySkuIds])
    .where('state', 'in', ['pending', 'returning'])
    .execute();
  const stock = await db.selectFrom('stock').select(['activity_sku_id', 'available']).where('activity_sku_id', 'in', [...activitySkuIds]).execute();
  const pending: UnitsOfOrders = new Map();
  const returning: UnitsOfOrders = new Map();
  for (const r of rows) {
    const into = r.state === 'pending' ? pending : returning;
    into.set(r.activity_sku_id, [...(into.get(r.activity_sku_id) ?? []), { orderNo: r.order_no, quantity: r.quantity }]);
  }
  return { available: new Map(stock.map((s) => [s.activity_sku_id, s.available])), pending, returning };
}

/** An order's sold units given back in the database that Redis has not yet counted, with the activity gating each SKU now (null: none). */
export async function returningOf(db: InventoryDb, orderNo: string): Promise<{ activitySkuId: number; quantity: number; activityId: number | null }[]> {
  const rows = await db
    .selectFrom('stock_reservations as r')
    .innerJoin('stock as s', 's.activity_sku_id', 'r.activity_sku_id')
    .select(['r.activity_sku_id', 'r.quantity', 's.flash_sale_activity_id'])
    .where('r.order_no', '=', orderNo)
    .where('r.state', '=', 'returning')
    .orderBy('r.activity_sku_id')
    .execute();
  return rows.map((r) => ({ activitySkuId: r.activity_sku_id, quantity: r.quantity, activityId: r.flash_sale_activity_id }));
}

/** Orders with returning units, by order number (roughly oldest first), at most `limit`. */
export async function ordersReturning(db: InventoryDb, limit: number): Promise<string[]> {
  const rows = await db.selectFrom('stock_reservations').select('order_no').distinct().where('state', '=', 'returning').orderBy('order_no').limit(limit).execute();
  return rows.map((r) => r.order_no);
}

/** Redis has counted these returned units (or no longer serves their SKUs): returning → returned. */
export async function finishReturns(db: InventoryDb, orderNo: string, activitySkuIds: readonly number[], now_ms: number): Promise<void> {
  if (activitySkuIds.length === 0) return;
  await transaction(db, async (trx) => {
    for (const activitySkuId of activitySkuIds) await moveReservation(trx, orderNo, activitySkuId, 'returning', 'returned', now_ms);
  });
}

/** Units of a SKU that Redis may have granted and the stock row has not yet seen. */
export async function pendingUnits(db: InventoryDb, activitySkuId: number): Promise<number> {
  const row = await db
    .selectFrom('stock_reservations')
    .select((eb) => eb.fn.sum<number>('quantity').as('units'))
    .where('activity_sku_id', '=', activitySkuId)
    .where('state', '=', 'pending')
    .executeTakeFirst();
  return Number(row?.units ?? 0);
}

export async function gatingActivityOf(db: InventoryDb, activitySkuId: number): Promise<number | null> {
  const row = await db.selectFrom('stock').select('flash_sale_activity_id').where('activity_sku_id', '=', activitySkuId).executeTakeFirst();
  return row?.flash_sale_activity_id ?? null;
}

/** Activities whose Redis keys gate some stock now. */
export async function gatingActivities(db: InventoryDb): Promise<number[]> {
  const rows = await db.selectFrom('stock').select('flash_sale_activity_id').distinct().where('flash_sale_activity_id', 'is not', null).execute();
  return rows.map((r) => r.flash_sale_activity_id!);
}

/**
 * The database takes an activity's stock back from Redis (after Redis stopped granting it): every
 * pending reservation becomes an ordinary reserved one — its order, if it is ever placed, keeps
 * its units; if not, the checkout's verification releases them — and the gate opens.
 */
export async function ungate(db: InventoryDb, activityId: number, now_ms: number): Promise<number> {
  return transaction(db, async (trx) => {
    let locked = trx.selectFrom('stock').select('activity_sku_id').where('flash_sale_activity_id', '=', activityId).orderBy('activity_sku_id');
    if (dialectOf(trx) !== 'sqlite') locked = locked.forUpdate();
    const skuIds = (await locked.execute()).map((r) => r.activity_sku_id);
    if (skuIds.length === 0) return 0;
    const pending = await trx
      .selectFrom('stock_reservations')
      .select(['order_no', 'activity_sku_id', 'quantity'])
      .where('activity_sku_id', 'in', skuIds)
      .where('state', '=', 'pending')
      .orderBy('activity_sku_id')
      .execute();
    for (const r of pending) {
      if (await moveReservation(trx, r.order_no, r.activity_sku_id, 'pending', 'reserved', now_ms)) await moveUnits(trx, r.activity_sku_id, r.quantity, 'available', 'reserved', now_ms);
    }
    await trx.updateTable('stock').set({ flash_sale_activity_id: null }).where('activity_sku_id', 'in', skuIds).execute();
    return skuIds.length;
  });
}
