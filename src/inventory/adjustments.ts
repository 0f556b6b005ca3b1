import { sql } from 'kysely';

import { transact } from '../platform/db/retry.ts';
import { affected } from '../platform/db/sql.ts';
import { AppError, assert } from '../platform/errors.ts';
import type { InventoryDb } from './tables.ts';

export const MAX_ADJUSTMENTS_LISTED = 100;

export interface StockAdjustment {
  id: number;
  activitySkuId: number;
  delta: number;
  reason: string;
  actor: string;
  totalAfter: number;
  availableAfter: number;
  at: string;
}

/**
 * An admin adds stock (delta > 0) or takes it away (delta < 0, a count correction, damaged
 * goods). Only available units can be taken away: reserved and sold ones belong to orders.
 * Each adjustment is a row with its reason; the same request id twice is applied once.
 */
export async function adjustStock(
  db: InventoryDb,
  input: { activitySkuId: number; delta: number; reason: string; actor: string; requestId: string },
  now_ms: number,
  /** Units that must stay available after a take-away: flash-sale units already promised in Redis. */
  keepAvailable = 0,
): Promise<StockAdjustment> {
  assert(Number.isSafeInteger(input.delta) && input.delta !== 0, 'a stock adjustment moves a non-zero whole number of units');
  return transact(db, async (trx) => {
    const earlier = await trx.selectFrom('stock_adjustments').selectAll().where('request_id', '=', input.requestId).executeTakeFirst();
    if (earlier) return view(earlier);
    const changed = await trx
      .updateTable('stock')
      .set({ total: sql`total + ${input.delta}`, available: sql`available + ${input.delta}`, updated_at_ms: now_ms })
      .where('activity_sku_id', '=', input.activitySkuId)
      .where(sql<boolean>`available + ${input.delta} >= ${keepAvailable}`)
      .executeTakeFirst();
    if (affected(changed) === 0) {
      const exists = await trx.selectFrom('stock').select('activity_sku_id').where('activity_sku_id', '=', input.activitySkuId).executeTakeFirst();
      throw exists ? new AppError('stock_adjustment_refused', { field: 'delta' }) : new AppError('not_found', { message: `No stock for activity SKU ${input.activitySkuId}.` });
    }
    const after = await trx.selectFrom('stock').select(['total', 'available']).where('activity_sku_id', '=', input.activitySkuId).executeTakeFirstOrThrow();
    await trx
      .insertInto('stock_adjustments')
      .values({
        activity_sku_id: input.activitySkuId,
        delta: input.delta,
        reason: input.reason,
        actor: input.actor,
        request_id: input.requestId,
        total_after: after.total,
        available_after: after.available,
        created_at_ms: now_ms,
      })
      .execute();
    const row = await trx.selectFrom('stock_adjustments').selectAll().where('request_id', '=', input.requestId).executeTakeFirstOrThrow();
    return view(row);
  });
}

export async function stockAdjustments(db: InventoryDb, activitySkuId: number, limit: number): Promise<StockAdjustment[]> {
  assert(limit > 0 && limit <= MAX_ADJUSTMENTS_LISTED, 'adjustment page size out of range');
  const rows = await db.selectFrom('stock_adjustments').selectAll().where('activity_sku_id', '=', activitySkuId).orderBy('id', 'desc').limit(limit).execute();
  return rows.map(view);
}

function view(r: { id: number; activity_sku_id: number; delta: number; reason: string; actor: string; total_after: number; available_after: number; created_at_ms: number }): StockAdjustment {
  return {
    id: r.id,
    activitySkuId: r.activity_sku_id,
    delta: r.delta,
    reason: r.reason,
    actor: r.actor,
    totalAfter: r.total_after,
    availableAfter: r.available_after,
    at: new Date(r.created_at_ms).toISOString(),
  };
}
