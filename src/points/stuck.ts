import { sql } from 'kysely';
import type { PointsDb } from './tables.ts';

/**
 * What of the points' can be left stuck by a crash, for the consistency pass: points frozen by an
 * order long ago that no deduct or unfreeze ended. Whether that order ended is the orders
 * module's to say; `endPointsFreeze(…, 'unfreeze')` gives them back.
 */

/** Accounts holding frozen points (few: only unpaid orders freeze), in buyer order after `afterBuyerId`. */
export async function accountsWithFrozenPoints(db: PointsDb, query: { afterBuyerId?: number | undefined; limit: number }): Promise<number[]> {
  let select = db.selectFrom('points_accounts').select('buyer_id').where('frozen', '>', 0);
  if (query.afterBuyerId !== undefined) select = select.where('buyer_id', '>', query.afterBuyerId);
  const rows = await select.orderBy('buyer_id').limit(query.limit).execute();
  return rows.map((r) => r.buyer_id);
}

/** The orders whose freeze on these buyers' points, made before `frozenBefore_ms`, was never deducted or unfrozen. */
export async function openFreezes(db: PointsDb, buyerIds: readonly number[], frozenBefore_ms: number): Promise<string[]> {
  if (buyerIds.length === 0) return [];
  const freezes = await db
    .selectFrom('points_journal as f')
    .select('f.order_no')
    .where('f.buyer_id', 'in', [...buyerIds])
    .where('f.movement', '=', 'freeze')
    .where('f.created_at_ms', '<', frozenBefore_ms)
    .where(({ not, exists, selectFrom }) =>
      not(
        exists(
          selectFrom('points_journal as s')
            .select(sql`1`.as('one'))
            .whereRef('s.buyer_id', '=', 'f.buyer_id')
            .whereRef('s.order_no', '=', 'f.order_no')
            .where('s.movement', 'in', ['deduct', 'unfreeze']),
        ),
      ),
    )
    .execute();
  return freezes.map((r) => r.order_no).filter((orderNo): orderNo is string => orderNo !== null);
}
