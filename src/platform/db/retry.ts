import type { Kysely, Transaction } from 'kysely';
import { assert } from '../errors.ts';

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
 * Opens a command's one transaction, retried as a whole on a deadlock or serialization error.
 * It is opened at the edge (a route, a job, a consumer) and passed down as a `Transaction`;
 * handed a transaction instead of a database it refuses, rather than silently join an outer
 * one whose retry and commit it cannot see.
 */
export function transaction<T, Tables>(db: Kysely<Tables>, work: (trx: Transaction<Tables>) => Promise<T>): Promise<T> {
  assert(!db.isTransaction, 'a transaction is opened once, at the edge: pass the open transaction down instead of opening another in it');
  return withTransientRetry(() => db.transaction().execute(work));
}
