import { sql } from 'kysely';
import type { Activity, SellableSku } from '../catalog/index.ts';
import { openness } from '../catalog/index.ts';
import { holdCreatedAt, holdKeyOf, setHold, type StockLevel } from '../inventory/index.ts';
import { scheduleJob } from '../jobs/index.ts';
import type { Transaction } from 'kysely';

import { dialectOf } from '../platform/db/database.ts';
import { transact } from '../platform/db/retry.ts';
import { affected } from '../platform/db/sql.ts';
import { AppError } from '../platform/errors.ts';
import { multiplyFen, sumFen } from '../platform/money.ts';
import type { CartDb, CartTransaction } from './tables.ts';

/** Most lines in one buyer's cart. */
export const MAX_CART_LINES = 50;
/** Most units of one activity SKU on one cart or order line. */
export const MAX_LINE_QUANTITY = 99;
/** 加购减库存: how long a cart line holds its units after the buyer last touched it. */
export const CART_HOLD_TTL_MS = 15 * 60_000;
/**
 * The whole life of a buyer's hold on one activity SKU, from when it was first made: touching the
 * line renews the hold up to this and no further, so re-sending the same quantity cannot keep
 * units from other buyers for ever. Past it the line stays in the cart unheld, and checkout
 * reserves its units from what is available, as for any other buyer.
 */
export const MAX_CART_HOLD_LIFETIME_MS = 4 * CART_HOLD_TTL_MS;
export const CART_HOLD_EXPIRE_JOB = 'cart.hold-expire';

export interface CartLine {
  activitySkuId: number;
  quantity: number;
  selected: boolean;
  hold_expires_at_ms: number | null;
  added_at_ms: number;
}

export async function cartLines(db: CartDb, buyerId: number): Promise<CartLine[]> {
  const rows = await db
    .selectFrom('cart_lines')
    .select(['activity_sku_id', 'quantity', 'selected', 'hold_expires_at_ms', 'added_at_ms'])
    .where('buyer_id', '=', buyerId)
    .orderBy('added_at_ms')
    .orderBy('activity_sku_id')
    .limit(MAX_CART_LINES + 1)
    .execute();
  return rows.map((r) => ({ activitySkuId: r.activity_sku_id, quantity: r.quantity, selected: r.selected === 1, hold_expires_at_ms: r.hold_expires_at_ms, added_at_ms: r.added_at_ms }));
}

/**
 * Holds the line's units for the buyer when the activity takes stock on add-to-cart: the hold,
 * its expiry job and the line change are one transaction. Touching the line renews the hold,
 * within MAX_CART_HOLD_LIFETIME_MS of the hold's first making; after that it holds nothing.
 */
async function holdLine(trx: CartTransaction, buyerId: number, activitySkuId: number, quantity: number, now_ms: number): Promise<void> {
  const holdKey = holdKeyOf(buyerId, activitySkuId);
  const ends_at_ms = ((await holdCreatedAt(trx, holdKey, activitySkuId)) ?? now_ms) + MAX_CART_HOLD_LIFETIME_MS;
  if (now_ms >= ends_at_ms) {
    await setHold(trx, holdKey, activitySkuId, 0, now_ms);
    await trx.updateTable('cart_lines').set({ hold_expires_at_ms: null }).where('buyer_id', '=', buyerId).where('activity_sku_id', '=', activitySkuId).execute();
    return;
  }
  const expires_at_ms = Math.min(now_ms + CART_HOLD_TTL_MS, ends_at_ms);
  await setHold(trx, holdKey, activitySkuId, quantity, now_ms);
  await trx.updateTable('cart_lines').set({ hold_expires_at_ms: expires_at_ms }).where('buyer_id', '=', buyerId).where('activity_sku_id', '=', activitySkuId).execute();
  await scheduleJob(
    trx,
    { kind: CART_HOLD_EXPIRE_JOB, key: `${CART_HOLD_EXPIRE_JOB}:${buyerId}:${activitySkuId}:${expires_at_ms}`, payload: { buyerId, activitySkuId, expires_at_ms }, due_at_ms: expires_at_ms },
    now_ms,
  );
}

/** The hold expiry job: releases the hold unless the line was touched (renewed) or removed since. */
export async function expireCartHold(db: CartDb, job: { buyerId: number; activitySkuId: number; expires_at_ms: number }, now_ms: number): Promise<boolean> {
  return transact(db, async (trx) => {
    let query = trx.selectFrom('cart_lines').select('hold_expires_at_ms').where('buyer_id', '=', job.buyerId).where('activity_sku_id', '=', job.activitySkuId);
    // Locked, so a renewal cannot slip in between this comparison and the release.
    if (dialectOf(trx) !== 'sqlite') query = query.forUpdate();
    const line = await query.executeTakeFirst();
    if (line && line.hold_expires_at_ms !== job.expires_at_ms) return false;
    await setHold(trx, holdKeyOf(job.buyerId, job.activitySkuId), job.activitySkuId, 0, now_ms);
    if (line) await trx.updateTable('cart_lines').set({ hold_expires_at_ms: null }).where('buyer_id', '=', job.buyerId).where('activity_sku_id', '=', job.activitySkuId).execute();
    return true;
  });
}

/** Adds units to the line of this activity SKU, creating it (selected) if needed. */
export async function addToCart(db: CartDb, buyerId: number, activitySkuId: number, quantity: number, now_ms: number, holds = false): Promise<void> {
  await transact(db, async (trx) => {
    const line = await trx
      .selectFrom('cart_lines')
      .select('quantity')
      .where('buyer_id', '=', buyerId)
      .where('activity_sku_id', '=', activitySkuId)
      .executeTakeFirst();
    if (line) {
      if (line.quantity + quantity > MAX_LINE_QUANTITY) throw new AppError('line_quantity_exceeded', { field: 'quantity', details: { max: MAX_LINE_QUANTITY } });
      await trx
        .updateTable('cart_lines')
        .set({ quantity: sql`quantity + ${quantity}`, updated_at_ms: now_ms })
        .where('buyer_id', '=', buyerId)
        .where('activity_sku_id', '=', activitySkuId)
        .execute();
      if (holds) {
        // The hold follows the quantity the update produced (the row is ours now), not the one read before it.
        const updated = await trx.selectFrom('cart_lines').select('quantity').where('buyer_id', '=', buyerId).where('activity_sku_id', '=', activitySkuId).executeTakeFirstOrThrow();
        await holdLine(trx, buyerId, activitySkuId, updated.quantity, now_ms);
      }
      return;
    }
    if (quantity > MAX_LINE_QUANTITY) throw new AppError('line_quantity_exceeded', { field: 'quantity', details: { max: MAX_LINE_QUANTITY } });
    const { count } = await trx
      .selectFrom('cart_lines')
      .select((eb) => eb.fn.countAll<number>().as('count'))
      .where('buyer_id', '=', buyerId)
      .executeTakeFirstOrThrow();
    if (Number(count) >= MAX_CART_LINES) throw new AppError('cart_full', { details: { max: MAX_CART_LINES } });
    await trx
      .insertInto('cart_lines')
      .values({ buyer_id: buyerId, activity_sku_id: activitySkuId, quantity, selected: 1, hold_expires_at_ms: null, added_at_ms: now_ms, updated_at_ms: now_ms })
      .execute();
    if (holds) await holdLine(trx, buyerId, activitySkuId, quantity, now_ms);
  });
}

export async function changeCartLine(
  db: CartDb,
  buyerId: number,
  activitySkuId: number,
  change: { quantity?: number; selected?: boolean },
  now_ms: number,
  holds = false,
): Promise<void> {
  if (change.quantity !== undefined && change.quantity > MAX_LINE_QUANTITY) {
    throw new AppError('line_quantity_exceeded', { field: 'quantity', details: { max: MAX_LINE_QUANTITY } });
  }
  await transact(db, async (trx) => {
    const result = await trx
      .updateTable('cart_lines')
      .set({
        ...(change.quantity !== undefined && { quantity: change.quantity }),
        ...(change.selected !== undefined && { selected: change.selected ? 1 : 0 }),
        updated_at_ms: now_ms,
      })
      .where('buyer_id', '=', buyerId)
      .where('activity_sku_id', '=', activitySkuId)
      .executeTakeFirst();
    if (affected(result) === 0) throw new AppError('not_found', { message: `No cart line for activity SKU ${activitySkuId}.` });
    if (holds && change.quantity !== undefined) await holdLine(trx, buyerId, activitySkuId, change.quantity, now_ms);
  });
}

export async function selectCartLines(db: CartDb, buyerId: number, activitySkuIds: readonly number[] | 'all', selected: boolean, now_ms: number): Promise<void> {
  let query = db.updateTable('cart_lines').set({ selected: selected ? 1 : 0, updated_at_ms: now_ms }).where('buyer_id', '=', buyerId);
  if (activitySkuIds !== 'all') {
    if (activitySkuIds.length === 0) return;
    query = query.where('activity_sku_id', 'in', [...activitySkuIds]);
  }
  await query.execute();
}

/** Removes the line and gives back whatever it held. */
export async function removeCartLine(db: CartDb, buyerId: number, activitySkuId: number, now_ms: number): Promise<void> {
  await transact(db, async (trx) => {
    const result = await trx.deleteFrom('cart_lines').where('buyer_id', '=', buyerId).where('activity_sku_id', '=', activitySkuId).executeTakeFirst();
    if (affected(result) === 0) throw new AppError('not_found', { message: `No cart line for activity SKU ${activitySkuId}.` });
    await setHold(trx, holdKeyOf(buyerId, activitySkuId), activitySkuId, 0, now_ms);
  });
}

/**
 * After an order is placed its SKUs leave the cart. Safe to repeat: deleting what is gone
 * deletes nothing. A line re-added after the order was placed is kept.
 */
export async function removeOrderedLines(db: CartDb | CartTransaction, buyerId: number, activitySkuIds: readonly number[], placed_at_ms: number): Promise<number> {
  if (activitySkuIds.length === 0) return 0;
  return transact(db, async (trx) => {
    const result = await trx
      .deleteFrom('cart_lines')
      .where('buyer_id', '=', buyerId)
      .where('activity_sku_id', 'in', [...activitySkuIds])
      .where('updated_at_ms', '<=', placed_at_ms)
      .executeTakeFirst();
    // Units the order did not take from a removed line's hold go back.
    const kept = new Set(
      (await trx.selectFrom('cart_lines').select('activity_sku_id').where('buyer_id', '=', buyerId).where('activity_sku_id', 'in', [...activitySkuIds]).execute()).map((r) => r.activity_sku_id),
    );
    for (const id of activitySkuIds) if (!kept.has(id)) await setHold(trx, holdKeyOf(buyerId, id), id, 0, placed_at_ms);
    return affected(result);
  });
}

export type Availability = 'available' | 'not_started' | 'activity_closed' | 'sold_out' | 'not_enough_stock' | 'withdrawn';

export interface CartLineView {
  activitySkuId: number;
  title: string | null;
  activity: Pick<Activity, 'id' | 'title' | 'pickupDate'> | null;
  unitPriceFen: number | null;
  quantity: number;
  subtotalFen: number | null;
  selected: boolean;
  availability: Availability;
  available: number | null;
  /** 加购减库存: until when the line's units are held; null when nothing is held. */
  heldUntil: string | null;
}

/**
 * What the phone shows: every line, with lines of ended or sold-out activities marked
 * unavailable rather than silently dropped. Pure: the caller loads catalog and stock.
 */
export function viewCart(lines: readonly CartLine[], skus: ReadonlyMap<number, SellableSku>, stock: ReadonlyMap<number, StockLevel>, now_ms: number) {
  const views: CartLineView[] = lines.map((line) => {
    const sku = skus.get(line.activitySkuId);
    const level = stock.get(line.activitySkuId);
    if (!sku || !level) {
      return { activitySkuId: line.activitySkuId, title: null, activity: null, unitPriceFen: null, quantity: line.quantity, subtotalFen: null, selected: line.selected, availability: 'withdrawn', available: null, heldUntil: null };
    }
    const open = openness(sku.activity, now_ms);
    const held = line.hold_expires_at_ms !== null && line.hold_expires_at_ms > now_ms;
    const availability: Availability =
      open === 'not_started' ? 'not_started'
      : open === 'closed' ? 'activity_closed'
      : held ? 'available'
      : level.available === 0 ? 'sold_out'
      : level.available < line.quantity ? 'not_enough_stock'
      : 'available';
    return {
      activitySkuId: line.activitySkuId,
      title: sku.title,
      activity: { id: sku.activity.id, title: sku.activity.title, pickupDate: sku.activity.pickupDate },
      unitPriceFen: sku.price_fen,
      quantity: line.quantity,
      subtotalFen: multiplyFen(sku.price_fen, line.quantity),
      selected: line.selected,
      availability,
      available: level.available,
      heldUntil: held ? new Date(line.hold_expires_at_ms!).toISOString() : null,
    };
  });
  const payable = views.filter((v) => v.selected && v.availability === 'available');
  return { lines: views, selectedTotalFen: sumFen(payable.map((v) => v.subtotalFen ?? 0)), currency: 'CNY' as const };
}
