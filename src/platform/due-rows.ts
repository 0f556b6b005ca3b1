import { sql } from 'kysely';
import type { Generated } from 'kysely';
import { dialectOf, type AnyDb } from './db/database.ts';
import { transact } from './db/retry.ts';

/**
 * The outbox and the jobs table are both "rows with a due time" (graphile-worker style):
 * written inside the caller's transaction, claimed by any number of processes with a lease
 * (FOR UPDATE SKIP LOCKED on PostgreSQL/MariaDB; SQLite has one writer at a time, so its
 * claim transaction is already exclusive), deleted when done, retried with backoff, and
 * set aside as dead after their last attempt.
 */
/** The owning module names its table; platform knows only the columns every due table has. */
export type DueTable = string;
/** A row as read back: generated columns hold their values. */
export type Claimed<Row> = { [K in keyof Row]: Row[K] extends Generated<infer V> ? V : Row[K] };

export const LEASE_MS = 30_000;
const RETRY_BASE_MS = 500;
const RETRY_CAP_MS = 5 * 60_000;

export async function claimDue<Row>(
  db: AnyDb,
  table: DueTable,
  owner: string,
  now_ms: number,
  limit: number,
): Promise<Claimed<Row>[]> {
  const dialect = dialectOf(db);
  const t = table as DueTable;
  return transact(db, async (trx) => {
    let query = trx
      .selectFrom(t)
      .select('id')
      .where('due_at_ms', '<=', now_ms)
      .where('locked_until_ms', '<=', now_ms)
      .where('dead_at_ms', 'is', null)
      .orderBy('due_at_ms')
      .orderBy('id')
      .limit(limit);
    if (dialect !== 'sqlite') query = query.forUpdate().skipLocked();
    const ids = (await query.execute()).map((r) => r.id);
    if (ids.length === 0) return [];
    await trx
      .updateTable(t)
      .set({ locked_by: owner, locked_until_ms: now_ms + LEASE_MS, attempts: sql`attempts + 1` })
      .where('id', 'in', ids)
      .execute();
    const rows = await trx.selectFrom(t).selectAll().where('id', 'in', ids).orderBy('id').execute();
    return rows as unknown as Claimed<Row>[];
  });
}

/** Done rows leave the table; only the owner of the lease may delete or reschedule them. */
export async function completeDue(db: AnyDb, table: DueTable, owner: string, ids: number[]): Promise<void> {
  if (ids.length === 0) return;
  await db.deleteFrom(table).where('id', 'in', ids).where('locked_by', '=', owner).execute();
}

export function retryDelay_ms(attempts: number): number {
  return Math.min(RETRY_CAP_MS, RETRY_BASE_MS * 2 ** Math.max(0, attempts - 1));
}

export async function failDue(
  db: AnyDb,
  table: DueTable,
  owner: string,
  row: { id: number; attempts: number },
  maxAttempts: number,
  error: unknown,
  now_ms: number,
): Promise<'retry' | 'dead'> {
  const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  const dead = row.attempts >= maxAttempts;
  await db
    .updateTable(table)
    .set({
      last_error: message.slice(0, 2000),
      locked_until_ms: 0,
      locked_by: null,
      due_at_ms: now_ms + retryDelay_ms(row.attempts),
      dead_at_ms: dead ? now_ms : null,
    })
    .where('id', '=', row.id)
    .where('locked_by', '=', owner)
    .execute();
  return dead ? 'dead' : 'retry';
}

/**
 * Gives rows back untried-for (a dependency such as the broker was away, not the row's fault):
 * the lease is dropped and they come due again at `due_at_ms`; they never turn dead this way.
 */
export async function deferDue(db: AnyDb, table: DueTable, owner: string, ids: number[], due_at_ms: number, error: unknown): Promise<void> {
  if (ids.length === 0) return;
  const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  await db
    .updateTable(table)
    .set({ last_error: message.slice(0, 2000), locked_until_ms: 0, locked_by: null, due_at_ms })
    .where('id', 'in', ids)
    .where('locked_by', '=', owner)
    .execute();
}
