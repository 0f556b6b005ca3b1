import { sql, type Generated, type Kysely, type Selectable } from 'kysely';
import { dialectOf, type AnyDb } from './db/database.ts';
import { transact } from './db/retry.ts';

/**
 * "Rows with a due time" (graphile-worker style), the shape the outbox and the jobs table share:
 * written inside the caller's transaction, claimed by any number of processes with a lease
 * (FOR UPDATE SKIP LOCKED on PostgreSQL/MariaDB; SQLite has one writer at a time, so its
 * claim transaction is already exclusive), deleted when done, retried with backoff, and
 * set aside as dead after their last attempt. The owning module names its table; the platform
 * knows only these columns.
 */
export interface DueColumns {
  id: Generated<number>;
  due_at_ms: number;
  locked_until_ms: number;
  locked_by: string | null;
  attempts: number;
  last_error: string | null;
  dead_at_ms: number | null;
}

/** A row as a claim reads it (generated columns filled in). */
export type Claimed<Row> = Selectable<Row>;

/** The owner's table seen through its due columns only: the name is the owner's, the columns are these. */
type DueDb = Kysely<{ due_rows: DueColumns }>;
const asDue = (db: Kysely<any>): DueDb => db as unknown as DueDb;
const named = (table: string) => table as 'due_rows';

export const LEASE_MS = 30_000;
const RETRY_BASE_MS = 500;
const RETRY_CAP_MS = 5 * 60_000;

export async function claimDue<Row extends DueColumns>(db: AnyDb, table: string, owner: string, now_ms: number, limit: number): Promise<Claimed<Row>[]> {
  const dialect = dialectOf(db);
  return transact(db, async (trx) => {
    const due = asDue(trx);
    let query = due
      .selectFrom(named(table))
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
    await due
      .updateTable(named(table))
      .set({ locked_by: owner, locked_until_ms: now_ms + LEASE_MS, attempts: sql`attempts + 1` })
      .where('id', 'in', ids)
      .execute();
    const rows = await due.selectFrom(named(table)).selectAll().where('id', 'in', ids).orderBy('id').execute();
    return rows as unknown as Claimed<Row>[];
  });
}

/** Done rows leave the table; only the owner of the lease may delete or reschedule them. */
export async function completeDue(db: AnyDb, table: string, owner: string, ids: number[]): Promise<void> {
  if (ids.length === 0) return;
  await asDue(db).deleteFrom(named(table)).where('id', 'in', ids).where('locked_by', '=', owner).execute();
}

export function retryDelay_ms(attempts: number): number {
  return Math.min(RETRY_CAP_MS, RETRY_BASE_MS * 2 ** Math.max(0, attempts - 1));
}

export async function failDue(
  db: AnyDb,
  table: string,
  owner: string,
  row: { id: number; attempts: number },
  maxAttempts: number,
  error: unknown,
  now_ms: number,
): Promise<'retry' | 'dead'> {
  const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  const dead = row.attempts >= maxAttempts;
  await asDue(db)
    .updateTable(named(table))
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
export async function deferDue(db: AnyDb, table: string, owner: string, ids: number[], due_at_ms: number, error: unknown): Promise<void> {
  if (ids.length === 0) return;
  const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  await asDue(db)
    .updateTable(named(table))
    .set({ last_error: message.slice(0, 2000), locked_until_ms: 0, locked_by: null, due_at_ms })
    .where('id', 'in', ids)
    .where('locked_by', '=', owner)
    .execute();
}

/**
 * The least `column` (a time) over the table's live rows, or over those due by `dueBy_ms` when given;
 * undefined when there is none.
 */
export async function oldestLive_ms(db: AnyDb, table: string, column: string, dueBy_ms?: number): Promise<number | undefined> {
  let query = asDue(db)
    .selectFrom(named(table))
    .select(sql<number | null>`min(${sql.ref(column)})`.as('oldest'))
    .where('dead_at_ms', 'is', null);
  if (dueBy_ms !== undefined) query = query.where('due_at_ms', '<=', dueBy_ms);
  const row = await query.executeTakeFirst();
  return row?.oldest === null || row?.oldest === undefined ? undefined : Number(row.oldest);
}

/** Rows set aside as dead after their last attempt. */
export async function deadCount(db: AnyDb, table: string): Promise<number> {
  const row = await asDue(db).selectFrom(named(table)).select((eb) => eb.fn.countAll<number>().as('n')).where('dead_at_ms', 'is not', null).executeTakeFirst();
  return Number(row?.n ?? 0);
}
