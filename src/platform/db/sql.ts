import type { InsertQueryBuilder, Kysely } from 'kysely';
import { dialectOf } from './database.ts';

/** INSERT that silently skips a row whose key exists, on every engine. */
export function ignoreDuplicates<QB extends InsertQueryBuilder<any, any, any>>(db: Kysely<any>): (qb: QB) => QB {
  return dialectOf(db) === 'mysql' ? (qb) => qb.ignore() as QB : (qb) => qb.onConflict((oc) => oc.doNothing()) as QB;
}

export function affected(result: { numUpdatedRows?: bigint; numDeletedRows?: bigint; numInsertedOrUpdatedRows?: bigint | undefined }): number {
  return Number(result.numUpdatedRows ?? result.numDeletedRows ?? result.numInsertedOrUpdatedRows ?? 0n);
}

/** The new row's id on every engine: RETURNING on PostgreSQL, the driver's insert id elsewhere. */
export async function insertReturningId(db: Kysely<any>, qb: InsertQueryBuilder<any, any, any>): Promise<number> {
  if (dialectOf(db) === 'postgres') {
    const row = (await qb.returning('id' as any).executeTakeFirstOrThrow()) as { id: number };
    return Number(row.id);
  }
  const result = await qb.executeTakeFirstOrThrow();
  if (result.insertId === undefined) throw new Error('insert returned no id');
  return Number(result.insertId);
}

/** A unique or primary key refused the row, on every engine. */
export function isUniqueViolation(error: unknown): boolean {
  const e = error as { code?: unknown; errno?: unknown } | null;
  if (!e || typeof e !== 'object') return false;
  return e.code === '23505' || e.errno === 1062 || e.code === 'SQLITE_CONSTRAINT_UNIQUE' || e.code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}
