
import { insertReturningId } from '../platform/db/sql.ts';
import { AppError } from '../platform/errors.ts';
import type { BuyersDb } from './tables.ts';

export interface Buyer {
  id: number;
  name: string;
  memberLevel: number;
}

export async function createBuyer(db: BuyersDb, input: { name: string; memberLevel?: number }, now_ms: number): Promise<Buyer> {
  const memberLevel = input.memberLevel ?? 0;
  const id = await insertReturningId(db, db.insertInto('buyers').values({ name: input.name, member_level: memberLevel, created_at_ms: now_ms }));
  return { id, name: input.name, memberLevel };
}

export async function listBuyers(db: BuyersDb, limit: number): Promise<Buyer[]> {
  const rows = await db.selectFrom('buyers').selectAll().orderBy('id').limit(limit).execute();
  return rows.map((r) => ({ id: r.id, name: r.name, memberLevel: r.member_level }));
}

/** The ones among these buyer ids the platform has no record of (an order, points or a coupon for them is refused). */
export async function unknownBuyers(db: BuyersDb, buyerIds: readonly number[]): Promise<number[]> {
  const wanted = [...new Set(buyerIds)];
  if (wanted.length === 0) return [];
  const rows = await db.selectFrom('buyers').select('id').where('id', 'in', wanted).execute();
  const known = new Set(rows.map((r) => Number(r.id)));
  return wanted.filter((id) => !known.has(id));
}

/** `buyer_not_found` unless every one of these buyers exists. */
export async function assertBuyersExist(db: BuyersDb, buyerIds: readonly number[], field?: string): Promise<void> {
  const unknown = await unknownBuyers(db, buyerIds);
  if (unknown.length > 0) throw new AppError('buyer_not_found', { ...(field !== undefined && { field }), details: { buyerIds: unknown } });
}

/** A buyer's member level; 0 for buyers the platform has no record of yet. */
export async function memberLevelOf(db: BuyersDb, buyerId: number): Promise<number> {
  const row = await db.selectFrom('buyers').select('member_level').where('id', '=', buyerId).executeTakeFirst();
  return row?.member_level ?? 0;
}
