import { sql, type Transaction } from 'kysely';
import { dialectOf } from '../platform/db/database.ts';

import { AppError, isAppError } from '../platform/errors.ts';
import type { OrdersDb, OrdersTransaction } from './tables.ts';

/**
 * What one buyer's unpaid orders may hold, so that a few unpaid orders cannot lock an activity's
 * stock: each unpaid order reserves its units until it is paid, cancelled or times out.
 */
export interface BuyerLimits {
  /** Most orders a buyer may have waiting for payment at once. */
  maxOpenOrders: number;
  /** Most units of one activity SKU a buyer's unpaid orders may hold together, where the SKU has no purchase limit (限购) of its own. */
  maxUnpaidUnitsPerSku: number;
}

/** CHECKOUT_MAX_OPEN_ORDERS_PER_BUYER's default. */
export const MAX_OPEN_ORDERS_PER_BUYER = 10;
/** CHECKOUT_MAX_UNPAID_UNITS_PER_SKU's default: one full order line (MAX_LINE_QUANTITY). */
export const MAX_UNPAID_UNITS_PER_BUYER_SKU = 99;
/** CHECKOUT_RATE_LIMIT's default: checkouts one buyer may submit per CHECKOUT_RATE_WINDOW_MS (a retry of a submission counts too). */
export const CHECKOUT_RATE_LIMIT = 20;
/** CHECKOUT_RATE_WINDOW_MS's default. */
export const CHECKOUT_RATE_WINDOW_MS = 60_000;
export const DEFAULT_BUYER_LIMITS: BuyerLimits = { maxOpenOrders: MAX_OPEN_ORDERS_PER_BUYER, maxUnpaidUnitsPerSku: MAX_UNPAID_UNITS_PER_BUYER_SKU };

export interface LimitedLine {
  activitySkuId: number;
  quantity: number;
  /** The SKU's own purchase limit; a SKU with one is bounded by it instead. */
  purchaseLimit: number | null;
}

/**
 * Refuses a new order that would pass the buyer's limits, counting the buyer's orders waiting for
 * payment on their shard: `open_orders_limit_reached`, then `unpaid_units_limit_reached` naming the
 * line. Exact when run after lockBuyerCheckouts in the order's transaction; before it, an early
 * check that spares a doomed checkout its reservations.
 */
export async function checkBuyerLimits(db: OrdersDb | OrdersTransaction, buyerId: number, lines: readonly LimitedLine[], limits: BuyerLimits): Promise<void> {
  const open = await db
    .selectFrom('orders')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('buyer_id', '=', buyerId)
    .where('status', '=', 'PENDING_PAYMENT')
    .executeTakeFirstOrThrow();
  if (Number(open.n) + 1 > limits.maxOpenOrders) {
    throw new AppError('open_orders_limit_reached', { details: { limit: 'MAX_OPEN_ORDERS_PER_BUYER', max: limits.maxOpenOrders } });
  }
  const unlimited = lines.filter((l) => l.purchaseLimit === null);
  if (unlimited.length === 0) return;
  const held = await db
    .selectFrom('order_lines as l')
    .innerJoin('orders as o', 'o.order_no', 'l.order_no')
    .select(['l.activity_sku_id', (eb) => eb.fn.sum<number>('l.quantity').as('units')])
    .where('o.buyer_id', '=', buyerId)
    .where('o.status', '=', 'PENDING_PAYMENT')
    .where('l.activity_sku_id', 'in', unlimited.map((l) => l.activitySkuId))
    .groupBy('l.activity_sku_id')
    .execute();
  const units = new Map(held.map((r) => [Number(r.activity_sku_id), Number(r.units)]));
  for (const line of unlimited) {
    const already = units.get(line.activitySkuId) ?? 0;
    if (already + line.quantity > limits.maxUnpaidUnitsPerSku) {
      throw new AppError('unpaid_units_limit_reached', {
        details: { activitySkuId: line.activitySkuId, limit: 'MAX_UNPAID_UNITS_PER_BUYER_SKU', max: limits.maxUnpaidUnitsPerSku, unpaid: already },
      });
    }
  }
}

/**
 * The first write of an order's transaction: raises the buyer's count of placed orders, taking
 * the row's lock until commit, so two checkouts of one buyer check their limits one after the other.
 */
export async function lockBuyerCheckouts(trx: OrdersTransaction, buyerId: number): Promise<void> {
  const insert = trx.insertInto('buyer_checkouts').values({ buyer_id: buyerId, placed_orders: 1 });
  if (dialectOf(trx) === 'mysql') {
    await insert.onDuplicateKeyUpdate({ placed_orders: sql`placed_orders + 1` }).execute();
    return;
  }
  await insert.onConflict((oc) => oc.column('buyer_id').doUpdateSet({ placed_orders: sql`buyer_checkouts.placed_orders + 1` })).execute();
}

/** checkBuyerLimits for a checkout's items; a refusal over units names the item's line (`items.N.quantity`). */
export async function checkCheckoutLimits(
  db: Parameters<typeof checkBuyerLimits>[0],
  buyerId: number,
  items: ReadonlyArray<{ activitySkuId: number; quantity: number }>,
  skus: ReadonlyMap<number, { purchaseLimit: number | null }>,
  limits: BuyerLimits = DEFAULT_BUYER_LIMITS,
): Promise<void> {
  const lines: LimitedLine[] = items.map((i) => ({ activitySkuId: i.activitySkuId, quantity: i.quantity, purchaseLimit: skus.get(i.activitySkuId)!.purchaseLimit }));
  try {
    await checkBuyerLimits(db, buyerId, lines, limits);
  } catch (error) {
    if (!isAppError(error, 'unpaid_units_limit_reached')) throw error;
    const index = items.findIndex((i) => i.activitySkuId === error.details?.activitySkuId);
    throw new AppError(error.code, { field: `items.${index}.quantity`, details: error.details });
  }
}
