import { sql, type Transaction } from 'kysely';
import { dialectOf } from '../platform/db/database.ts';
import { transact } from '../platform/db/retry.ts';

import { affected, ignoreDuplicates } from '../platform/db/sql.ts';
import { AppError, assert } from '../platform/errors.ts';

/**
 * 积分: an account per buyer (balance, and the part frozen by unpaid orders) and a journal
 * row for every movement. Each movement has a dedupe key, so a repeated freeze, deduction or
 * return changes nothing. The database refuses a negative balance or a freeze past it.
 */
export const POINTS_POLICY = { pointsPerYuan: 100, maxShare_bp: 5000 } as const;
/** Points earned per whole yuan paid, when an order is completed (picked up). */
export const POINTS_EARNED_PER_YUAN = 1;
export const MAX_JOURNAL_PAGE = 100;

import type { Movement } from './movements.ts';
import type { PointsDb, PointsTransaction } from './tables.ts';
export type { Movement };

export interface PointsAccount {
  balance: number;
  frozen: number;
  available: number;
}

export async function pointsAccount(db: PointsDb | PointsTransaction, buyerId: number): Promise<PointsAccount> {
  const row = await db.selectFrom('points_accounts').select(['balance', 'frozen']).where('buyer_id', '=', buyerId).executeTakeFirst();
  const balance = row?.balance ?? 0;
  const frozen = row?.frozen ?? 0;
  return { balance, frozen, available: balance - frozen };
}

async function alreadyMoved(trx: PointsTransaction, dedupeKey: string): Promise<boolean> {
  return (await trx.selectFrom('points_journal').select('id').where('dedupe_key', '=', dedupeKey).executeTakeFirst()) !== undefined;
}

async function journal(trx: PointsTransaction, buyerId: number, movement: Movement, points: number, dedupeKey: string, orderNo: string | null, note: string | null, now_ms: number): Promise<void> {
  const after = await pointsAccount(trx, buyerId);
  // A concurrent twin of this movement fails here on the unique key and rolls back its change.
  await trx
    .insertInto('points_journal')
    .values({ buyer_id: buyerId, movement, points, order_no: orderNo, dedupe_key: dedupeKey, balance_after: after.balance, frozen_after: after.frozen, note, created_at_ms: now_ms })
    .execute();
}

export async function grantPoints(db: PointsDb, buyerId: number, points: number, dedupeKey: string, note: string, now_ms: number): Promise<void> {
  assert(Number.isSafeInteger(points) && points > 0, 'grant a positive number of points');
  await transact(db, async (trx) => {
    if (await alreadyMoved(trx, `grant:${dedupeKey}`)) return;
    await trx.insertInto('points_accounts').values({ buyer_id: buyerId, balance: 0, frozen: 0, updated_at_ms: now_ms }).$call(ignoreDuplicates(trx)).execute();
    await trx.updateTable('points_accounts').set({ balance: sql`balance + ${points}`, updated_at_ms: now_ms }).where('buyer_id', '=', buyerId).execute();
    await journal(trx, buyerId, 'grant', points, `grant:${dedupeKey}`, null, note, now_ms);
  });
}

/** 积分冻结 at checkout, inside the caller's transaction: fails with insufficient_points. */
export async function freezePoints(trx: PointsTransaction, buyerId: number, orderNo: string, points: number, now_ms: number): Promise<void> {
  if (points === 0 || (await alreadyMoved(trx, `freeze:${orderNo}`))) return;
  const frozen = await trx
    .updateTable('points_accounts')
    .set({ frozen: sql`frozen + ${points}`, updated_at_ms: now_ms })
    .where('buyer_id', '=', buyerId)
    .where(sql<boolean>`balance - frozen >= ${points}`)
    .executeTakeFirst();
  if (affected(frozen) === 0) throw new AppError('insufficient_points', { field: 'points' });
  await journal(trx, buyerId, 'freeze', points, `freeze:${orderNo}`, orderNo, null, now_ms);
}

/**
 * Settles what an order froze: `deduct` at payment (frozen and balance both go down),
 * `unfreeze` at cancel or timeout. An order is paid or cancelled, never both, so only one
 * kind is ever asked for; a repeat finds its journal row and does nothing.
 */
export async function settlePoints(db: PointsDb | PointsTransaction, orderNo: string, movement: 'deduct' | 'unfreeze', now_ms: number): Promise<number> {
  return transact(db, async (trx) => {
    const freeze = await trx.selectFrom('points_journal').select(['buyer_id', 'points']).where('dedupe_key', '=', `freeze:${orderNo}`).executeTakeFirst();
    if (!freeze) return 0;
    if ((await alreadyMoved(trx, `deduct:${orderNo}`)) || (await alreadyMoved(trx, `unfreeze:${orderNo}`))) return 0;
    const changed = await trx
      .updateTable('points_accounts')
      .set({
        frozen: sql`frozen - ${freeze.points}`,
        ...(movement === 'deduct' && { balance: sql`balance - ${freeze.points}` }),
        updated_at_ms: now_ms,
      })
      .where('buyer_id', '=', freeze.buyer_id)
      .where('frozen', '>=', freeze.points)
      .executeTakeFirst();
    assert(affected(changed) === 1, () => `points frozen by ${orderNo} are missing from the account`);
    await journal(trx, freeze.buyer_id, movement, freeze.points, `${movement}:${orderNo}`, orderNo, null, now_ms);
    return freeze.points;
  });
}

export async function pointsJournal(db: PointsDb, buyerId: number, limit: number) {
  assert(limit > 0 && limit <= MAX_JOURNAL_PAGE, 'journal page size out of range');
  const rows = await db
    .selectFrom('points_journal')
    .select(['id', 'movement', 'points', 'order_no', 'balance_after', 'frozen_after', 'note', 'created_at_ms'])
    .where('buyer_id', '=', buyerId)
    .orderBy('id', 'desc')
    .limit(limit)
    .execute();
  return rows.map((r) => ({
    movement: r.movement as Movement,
    points: r.points,
    orderNo: r.order_no,
    balanceAfter: r.balance_after,
    frozenAfter: r.frozen_after,
    note: r.note,
    at: new Date(r.created_at_ms).toISOString(),
  }));
}

/**
 * For the refund path: returns the points an order spent in proportion to what has been
 * refunded so far. Each refund is applied once (by its id); the returns of all refunds of an
 * order add up to exactly the points spent once it is refunded in full.
 */
export async function returnPointsOnRefund(
  db: PointsDb | PointsTransaction,
  orderNo: string,
  refundId: string,
  refundedSoFar_fen: number,
  orderPayable_fen: number,
  now_ms: number,
): Promise<number> {
  assert(refundedSoFar_fen >= 0 && refundedSoFar_fen <= orderPayable_fen && orderPayable_fen > 0, 'refunded amount out of range');
  const locking = dialectOf(db) !== 'sqlite';
  return transact(db, async (trx) => {
    // Refunds of one order take turns on its deduction row, so each sees the ones before it.
    let deductedQuery = trx.selectFrom('points_journal').select(['buyer_id', 'points']).where('dedupe_key', '=', `deduct:${orderNo}`);
    if (locking) deductedQuery = deductedQuery.forUpdate();
    const deducted = await deductedQuery.executeTakeFirst();
    if (!deducted || (await alreadyMoved(trx, `refund:${orderNo}:${refundId}`))) return 0;
    let earlierQuery = trx.selectFrom('points_journal').select('points').where('order_no', '=', orderNo).where('movement', '=', 'refund');
    if (locking) earlierQuery = earlierQuery.forUpdate();
    const earlier = { returned: (await earlierQuery.execute()).reduce((sum, r) => sum + r.points, 0) };
    const due = Math.floor((deducted.points * refundedSoFar_fen) / orderPayable_fen) - Number(earlier.returned);
    if (due <= 0) return 0;
    await trx.updateTable('points_accounts').set({ balance: sql`balance + ${due}`, updated_at_ms: now_ms }).where('buyer_id', '=', deducted.buyer_id).execute();
    await journal(trx, deducted.buyer_id, 'refund', due, `refund:${orderNo}:${refundId}`, orderNo, null, now_ms);
    return due;
  });
}

/** Points earned when an order is completed: once per order. */
export async function earnPoints(db: PointsDb, buyerId: number, orderNo: string, paid_fen: number, now_ms: number): Promise<number> {
  const points = Math.floor(paid_fen / 100) * POINTS_EARNED_PER_YUAN;
  if (points <= 0) return 0;
  return transact(db, async (trx) => {
    if (await alreadyMoved(trx, `earn:${orderNo}`)) return 0;
    await trx.insertInto('points_accounts').values({ buyer_id: buyerId, balance: 0, frozen: 0, updated_at_ms: now_ms }).$call(ignoreDuplicates(trx)).execute();
    await trx.updateTable('points_accounts').set({ balance: sql`balance + ${points}`, updated_at_ms: now_ms }).where('buyer_id', '=', buyerId).execute();
    await journal(trx, buyerId, 'earn', points, `earn:${orderNo}`, orderNo, null, now_ms);
    return points;
  });
}
