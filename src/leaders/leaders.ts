
import { insertReturningId } from '../platform/db/sql.ts';
import type { LeadersDb } from './tables.ts';

/** 团长: the neighbourhood group leader whose place is the pickup point. */
export interface Leader {
  id: number;
  name: string;
  community: string;
  address: string;
}

export async function createLeader(db: LeadersDb, input: Omit<Leader, 'id'>, now_ms: number): Promise<Leader> {
  const id = await insertReturningId(db, db.insertInto('leaders').values({ ...input, created_at_ms: now_ms }));
  return { id, ...input };
}

export async function getLeader(db: LeadersDb, id: number): Promise<Leader | undefined> {
  return db.selectFrom('leaders').select(['id', 'name', 'community', 'address']).where('id', '=', id).executeTakeFirst();
}

export async function listLeaders(db: LeadersDb, limit: number): Promise<Leader[]> {
  return db.selectFrom('leaders').select(['id', 'name', 'community', 'address']).orderBy('id').limit(limit).execute();
}
