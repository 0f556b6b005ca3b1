import type { Db } from '../platform/db/database.ts';
import { insertReturningId } from '../platform/db/sql.ts';

export interface Buyer {
  id: number;
  name: string;
  memberLevel: number;
}

export async function createBuyer(db: Db, input: { name: string; memberLevel?: number }, now_ms: number): Promise<Buyer> {
  const memberLevel = input.memberLevel ?? 0;
  const id = await insertReturningId(db, db.insertInto('buyers').values({ name: input.name, member_level: memberLevel, created_at_ms: now_ms }));
  return { id, name: input.name, memberLevel };
}

export async function listBuyers(db: Db, limit: number): Promise<Buyer[]> {
  const rows = await db.selectFrom('buyers').selectAll().orderBy('id').limit(limit).execute();
  return rows.map((r) => ({ id: r.id, name: r.name, memberLevel: r.member_level }));
}

/** A buyer's member level; 0 for buyers the platform has no record of yet. */
export async function memberLevelOf(db: Db, buyerId: number): Promise<number> {
  const row = await db.selectFrom('buyers').select('member_level').where('id', '=', buyerId).executeTakeFirst();
  return row?.member_level ?? 0;
}
