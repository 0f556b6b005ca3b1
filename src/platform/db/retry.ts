import type { Kysely, Transaction } from 'kysely';

/** Deadlocks and serialization failures are retried this many times in all. */
export const MAX_TRANSACTION_ATTEMPTS = 8;
const BACKOFF_BASE_MS = 4;
const BACKOFF_CAP_MS = 250;

/** Errors the database raises when two transactions collide; retrying is safe. */
export function isTransientDbError(error: unknown): boolean {
  const e = error as { code?: unknown; errno?: unknown } | null;
  if (!e || typeof e !== 'object') return false;
  // PostgreSQL: serialization_failure, deadlock_detected, lock_not_available.
  if (e.code === '40001' || e.code === '40P01' || e.code === '55P03') return true;
  // MySQL/MariaDB: ER_LOCK_DEADLOCK, ER_LOCK_WAIT_TIMEOUT.
  if (e.errno === 1213 || e.errno === 1205) return true;
  // SQLite: another process holds the write lock past busy_timeout.
  if (typeof e.code === 'string' && (e.code.startsWith('SQLITE_BUSY') || e.code.startsWith('SQLITE_LOCKED'))) return true;
  return false;
}

export async function withTransientRetry<T>(work: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (error) {
      if (!isTransientDbError(error) || attempt >= MAX_TRANSACTION_ATTEMPTS) throw error;
      const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt);
      await new Promise((resolve) => setTimeout(resolve, ceiling / 2 + Math.random() * (ceiling / 2)));
    }
  }
}

/**
 * One transaction per command, retried as a whole on a deadlock or serialization error.
 * Given a transaction instead of a database, the work joins it (no retry of its own: the
 * owner of the outer transaction retries the whole), so an event consumer can run a
 * module's command and record its inbox row in one commit.
 */
export function transact<T, Tables>(db: Kysely<Tables>, work: (trx: Transaction<Tables>) => Promise<T>): Promise<T> {
  if (db.isTransaction) return work(db as Transaction<Tables>);
  return withTransientRetry(() => db.transaction().execute(work));
}
