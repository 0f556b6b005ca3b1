import type { Transaction } from 'kysely';

import { AppError, assert } from '../platform/errors.ts';
import { assertFen } from '../platform/money.ts';
import { insertReturningId } from '../platform/db/sql.ts';

import { DEFAULT_INVENTORY_MODE, INVENTORY_MODES, SUPPORTED_INVENTORY_MODES, type InventoryMode } from './inventory-modes.ts';
import type { CatalogDb, CatalogTransaction } from './tables.ts';
export { DEFAULT_INVENTORY_MODE, INVENTORY_MODES, SUPPORTED_INVENTORY_MODES, type InventoryMode };

/** Most SKUs in one activity. */
export const MAX_ACTIVITY_SKUS = 200;

export interface Activity {
  id: number;
  title: string;
  starts_at_ms: number;
  ends_at_ms: number;
  order_cutoff_at_ms: number;
  pickupDate: string;
  inventoryMode: InventoryMode;
  /** 秒杀: the stock is served from Redis when the platform has one (on-order activities only). */
  hot: boolean;
}

export interface ActivitySku {
  id: number;
  activityId: number;
  skuId: number;
  price_fen: number;
  purchaseLimit: number | null;
  /** Stock-linked price: only the first N units sold get the activity price; null means all. */
  activityPriceUnits: number | null;
}

/** Everything checkout and the cart need to know about one activity SKU. */
export interface SellableSku {
  activitySkuId: number;
  activityId: number;
  skuId: number;
  merchantId: number;
  title: string;
  category: string | null;
  price_fen: number;
  listPrice_fen: number;
  weight_g: number;
  purchaseLimit: number | null;
  activityPriceUnits: number | null;
  activity: Activity;
}

export type Openness = 'open' | 'not_started' | 'closed';

/** Orders are taken from the start until the cut-off (截单), which is never after the end. */
export function openness(activity: Activity, now_ms: number): Openness {
  if (now_ms < activity.starts_at_ms) return 'not_started';
  if (now_ms >= activity.order_cutoff_at_ms || now_ms >= activity.ends_at_ms) return 'closed';
  return 'open';
}

export interface ActivityInput {
  title: string;
  starts_at_ms: number;
  ends_at_ms: number;
  order_cutoff_at_ms: number;
  pickupDate: string;
  inventoryMode: InventoryMode;
  hot?: boolean;
}

export function checkActivityWindow(a: Pick<ActivityInput, 'starts_at_ms' | 'ends_at_ms' | 'order_cutoff_at_ms'>): void {
  if (a.starts_at_ms >= a.ends_at_ms) throw new AppError('invalid_field', { field: 'endsAt', message: 'endsAt must be after startsAt.' });
  if (a.order_cutoff_at_ms > a.ends_at_ms || a.order_cutoff_at_ms <= a.starts_at_ms) {
    throw new AppError('invalid_field', { field: 'orderCutoffAt', message: 'orderCutoffAt must fall after startsAt and no later than endsAt.' });
  }
}

export function checkInventoryMode(mode: InventoryMode): void {
  if (!SUPPORTED_INVENTORY_MODES.includes(mode)) {
    throw new AppError('invalid_field', { field: 'inventoryMode', message: `Inventory mode ${mode} is not supported.` });
  }
}

/**
 * A hot activity's stock is reserved at checkout by the Redis gate, which knows nothing of cart
 * holds, payment-time deduction or stock-linked prices: so only plain on-order activities are hot.
 */
function checkHot(hot: boolean, mode: InventoryMode, stockLinked: boolean): void {
  if (!hot) return;
  if (mode !== 'on_order') throw new AppError('invalid_field', { field: 'hot', message: 'Only on-order activities can be hot (served from Redis).' });
  if (stockLinked) throw new AppError('invalid_field', { field: 'hot', message: 'A hot activity cannot have stock-linked prices (activityPriceUnits).' });
}

/** Stock-linked prices count units when stock is taken; on-payment activities take it too late for that. */
function stockLinkedOnPayment(field: string): AppError {
  return new AppError('invalid_field', { field, message: 'Stock-linked prices (activityPriceUnits) are not offered on on-payment activities.' });
}

export async function insertActivity(
  trx: CatalogTransaction,
  input: ActivityInput,
  skus: { skuId: number; price_fen: number; purchaseLimit: number | null; activityPriceUnits?: number | null }[],
  now_ms: number,
): Promise<{ activity: Activity; skus: ActivitySku[] }> {
  checkActivityWindow(input);
  checkInventoryMode(input.inventoryMode);
  assert(skus.length <= MAX_ACTIVITY_SKUS, 'too many activity SKUs');
  const known = await trx.selectFrom('skus').select('id').where('id', 'in', skus.length ? skus.map((s) => s.skuId) : [0]).execute();
  const knownIds = new Set(known.map((sku) => sku.id));
  skus.forEach((s, i) => {
    if (!knownIds.has(s.skuId)) throw new AppError('invalid_field', { field: `skus.${i}.skuId`, message: `No SKU ${s.skuId}.` });
    if (input.inventoryMode === 'on_payment' && s.activityPriceUnits != null) throw stockLinkedOnPayment(`skus.${i}.activityPriceUnits`);
    assertFen(s.price_fen, 'activity price');
  });
  checkHot(input.hot ?? false, input.inventoryMode, skus.some((s) => s.activityPriceUnits != null));
  const id = await insertReturningId(
    trx,
    trx.insertInto('activities')
    .values({
      title: input.title,
      starts_at_ms: input.starts_at_ms,
      ends_at_ms: input.ends_at_ms,
      order_cutoff_at_ms: input.order_cutoff_at_ms,
      pickup_date: input.pickupDate,
      inventory_mode: input.inventoryMode,
      hot: input.hot ? 1 : 0,
      created_at_ms: now_ms,
      updated_at_ms: now_ms,
    }),
  );
  const created: ActivitySku[] = [];
  for (const s of skus) {
    const activitySkuId = await insertReturningId(
      trx,
      trx
        .insertInto('activity_skus')
        .values({ activity_id: id, sku_id: s.skuId, price_fen: s.price_fen, purchase_limit: s.purchaseLimit, activity_price_units: s.activityPriceUnits ?? null, created_at_ms: now_ms, updated_at_ms: now_ms }),
    );
    created.push({ id: activitySkuId, activityId: id, skuId: s.skuId, price_fen: s.price_fen, purchaseLimit: s.purchaseLimit, activityPriceUnits: s.activityPriceUnits ?? null });
  }
  return { activity: { id, ...input, hot: input.hot ?? false }, skus: created };
}

export async function updateActivity(db: CatalogDb, id: number, patch: Partial<ActivityInput>, now_ms: number): Promise<Activity> {
  const current = await getActivity(db, id);
  if (!current) throw new AppError('not_found', { message: `No activity ${id}.` });
  const next = { ...current, ...patch };
  checkActivityWindow(next);
  checkInventoryMode(next.inventoryMode);
  if (next.inventoryMode === 'on_payment' || next.hot) {
    const linked = await db.selectFrom('activity_skus').select('id').where('activity_id', '=', id).where('activity_price_units', 'is not', null).executeTakeFirst();
    if (linked && next.inventoryMode === 'on_payment') throw stockLinkedOnPayment('inventoryMode');
    checkHot(next.hot, next.inventoryMode, linked !== undefined);
  }
  await db
    .updateTable('activities')
    .set({
      title: next.title,
      starts_at_ms: next.starts_at_ms,
      ends_at_ms: next.ends_at_ms,
      order_cutoff_at_ms: next.order_cutoff_at_ms,
      pickup_date: next.pickupDate,
      inventory_mode: next.inventoryMode,
      hot: next.hot ? 1 : 0,
      updated_at_ms: now_ms,
    })
    .where('id', '=', id)
    .execute();
  return next;
}

export async function updateActivitySku(
  db: CatalogDb,
  id: number,
  patch: { price_fen?: number; purchaseLimit?: number | null; activityPriceUnits?: number | null },
  now_ms: number,
): Promise<ActivitySku> {
  const row = await db.selectFrom('activity_skus').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) throw new AppError('not_found', { message: `No activity SKU ${id}.` });
  const price_fen = patch.price_fen ?? row.price_fen;
  const purchaseLimit = patch.purchaseLimit === undefined ? row.purchase_limit : patch.purchaseLimit;
  const activityPriceUnits = patch.activityPriceUnits === undefined ? row.activity_price_units : patch.activityPriceUnits;
  if (activityPriceUnits !== null) {
    const activity = await getActivity(db, row.activity_id);
    if (activity?.inventoryMode === 'on_payment') throw stockLinkedOnPayment('activityPriceUnits');
    if (activity?.hot) throw new AppError('invalid_field', { field: 'activityPriceUnits', message: 'A hot activity cannot have stock-linked prices.' });
  }
  await db
    .updateTable('activity_skus')
    .set({ price_fen, purchase_limit: purchaseLimit, activity_price_units: activityPriceUnits, updated_at_ms: now_ms })
    .where('id', '=', id)
    .execute();
  return { id, activityId: row.activity_id, skuId: row.sku_id, price_fen, purchaseLimit, activityPriceUnits };
}

const activityColumns = ['id', 'title', 'starts_at_ms', 'ends_at_ms', 'order_cutoff_at_ms', 'pickup_date', 'inventory_mode', 'hot'] as const;

function toActivity(row: { id: number; title: string; starts_at_ms: number; ends_at_ms: number; order_cutoff_at_ms: number; pickup_date: string; inventory_mode: string; hot: number }): Activity {
  return {
    id: row.id,
    title: row.title,
    starts_at_ms: row.starts_at_ms,
    ends_at_ms: row.ends_at_ms,
    order_cutoff_at_ms: row.order_cutoff_at_ms,
    pickupDate: row.pickup_date,
    inventoryMode: row.inventory_mode as InventoryMode,
    hot: Number(row.hot) === 1,
  };
}

export async function getActivity(db: CatalogDb, id: number): Promise<Activity | undefined> {
  const row = await db.selectFrom('activities').select(activityColumns).where('id', '=', id).executeTakeFirst();
  return row && toActivity(row);
}

/** Activities that have not ended, newest first, with their SKUs. */
export async function listCurrentActivities(db: CatalogDb, now_ms: number, limit: number): Promise<{ activity: Activity; skus: SellableSku[] }[]> {
  const activities = (
    await db.selectFrom('activities').select(activityColumns).where('ends_at_ms', '>', now_ms).orderBy('starts_at_ms', 'desc').limit(limit).execute()
  ).map(toActivity);
  if (activities.length === 0) return [];
  const skus = await sellableSkuQuery(db).where('a.id', 'in', activities.map((a) => a.id)).orderBy('s.id').execute();
  return activities.map((activity) => ({ activity, skus: skus.filter((s) => s.activity_id === activity.id).map(toSellable) }));
}

function sellableSkuQuery(db: CatalogDb) {
  return db
    .selectFrom('activity_skus as s')
    .innerJoin('activities as a', 'a.id', 's.activity_id')
    .innerJoin('skus as k', 'k.id', 's.sku_id')
    .innerJoin('products as p', 'p.id', 'k.product_id')
    .select([
      's.id as activity_sku_id',
      's.price_fen',
      's.purchase_limit',
      's.activity_price_units',
      'k.id as sku_id',
      'k.merchant_id',
      'k.list_price_fen',
      'k.weight_g',
      'k.title as sku_title',
      'p.title as product_title',
      'p.category',
      'a.id as activity_id',
      'a.title as activity_title',
      'a.starts_at_ms',
      'a.ends_at_ms',
      'a.order_cutoff_at_ms',
      'a.pickup_date',
      'a.inventory_mode',
      'a.hot',
    ]);
}

type SellableRow = Awaited<ReturnType<ReturnType<typeof sellableSkuQuery>['execute']>>[number];

function toSellable(r: SellableRow): SellableSku {
  return {
    activitySkuId: r.activity_sku_id,
    activityId: r.activity_id,
    skuId: r.sku_id,
    merchantId: r.merchant_id,
    title: r.sku_title ? `${r.product_title} ${r.sku_title}` : r.product_title,
    category: r.category,
    price_fen: r.price_fen,
    listPrice_fen: r.list_price_fen,
    weight_g: r.weight_g,
    purchaseLimit: r.purchase_limit,
    activityPriceUnits: r.activity_price_units,
    activity: toActivity({
      id: r.activity_id,
      title: r.activity_title,
      starts_at_ms: r.starts_at_ms,
      ends_at_ms: r.ends_at_ms,
      order_cutoff_at_ms: r.order_cutoff_at_ms,
      pickup_date: r.pickup_date,
      inventory_mode: r.inventory_mode,
      hot: r.hot,
    }),
  };
}

/** One query for all the activity SKUs a cart or checkout names; unknown ids are absent. */
export async function loadSellableSkus(db: CatalogDb, activitySkuIds: readonly number[]): Promise<Map<number, SellableSku>> {
  if (activitySkuIds.length === 0) return new Map();
  const rows = await sellableSkuQuery(db).where('s.id', 'in', [...activitySkuIds]).execute();
  return new Map(rows.map((r) => [r.activity_sku_id, toSellable(r)]));
}

/** The activity SKU ids of one activity, ascending. */
export async function activitySkuIdsOf(db: CatalogDb, activityId: number): Promise<number[]> {
  const rows = await db.selectFrom('activity_skus').select('id').where('activity_id', '=', activityId).orderBy('id').execute();
  return rows.map((r) => r.id);
}

/** Most hot activities one pass of the flash-sale upkeep looks at. */
export const MAX_HOT_ACTIVITIES = 500;

/** Hot activities that have not ended, soonest ending first. */
export async function hotActivities(db: CatalogDb, now_ms: number): Promise<Activity[]> {
  const rows = await db.selectFrom('activities').select(activityColumns).where('hot', '=', 1).where('ends_at_ms', '>', now_ms).orderBy('ends_at_ms').limit(MAX_HOT_ACTIVITIES).execute();
  return rows.map(toActivity);
}
