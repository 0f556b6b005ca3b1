import type { Kysely, Transaction } from 'kysely';

import { deadCount, oldestLive_ms } from '../platform/due-rows.ts';
import type { JobsDb, JobsTables } from './tables.ts';

/**
 * The jobs table is this module's alone: other modules schedule, cancel and ask about jobs
 * through these functions, by the job key they built (`<kind>:<what it is for>[:…]`), never by
 * writing or reading the rows themselves.
 */

/** The first key past every key starting with `prefix`: a key range rather than LIKE, so every engine walks the unique index. */
function pastPrefix(prefix: string): string {
  if (prefix.length === 0) throw new Error('a job key prefix must not be empty');
  return prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
}

/** Removes the job with this key, waiting or dead; inside the caller's transaction when given one. No such job is no error. */
export async function cancelJob(db: JobsDb | Transaction<JobsTables>, key: string): Promise<number> {
  const result = await db.deleteFrom('jobs').where('job_key', '=', key).executeTakeFirst();
  return Number(result.numDeletedRows);
}

/** Removes every job whose key starts with `keyPrefix` (`payment.query:{payNo}:` for all of one payment's queries). */
export async function cancelJobs(db: JobsDb | Transaction<JobsTables>, keyPrefix: string): Promise<number> {
  const result = await db.deleteFrom('jobs').where('job_key', '>=', keyPrefix).where('job_key', '<', pastPrefix(keyPrefix)).executeTakeFirst();
  return Number(result.numDeletedRows);
}

/** Removes the dead jobs (set aside after their last attempt) whose key starts with `keyPrefix`. */
export async function cancelDeadJobs(db: JobsDb | Transaction<JobsTables>, keyPrefix: string): Promise<number> {
  const result = await db
    .deleteFrom('jobs')
    .where('job_key', '>=', keyPrefix)
    .where('job_key', '<', pastPrefix(keyPrefix))
    .where('dead_at_ms', 'is not', null)
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}

/** Whether any job (waiting, running or dead) has a key starting with `keyPrefix`. */
export async function hasJobs(db: JobsDb | Transaction<JobsTables>, keyPrefix: string): Promise<boolean> {
  const row = await db.selectFrom('jobs').select('id').where('job_key', '>=', keyPrefix).where('job_key', '<', pastPrefix(keyPrefix)).limit(1).executeTakeFirst();
  return row !== undefined;
}

/** Of these job keys, the ones a worker will still run (present and not dead). */
export async function waitingJobKeys(db: JobsDb | Transaction<JobsTables>, keys: readonly string[]): Promise<Set<string>> {
  if (keys.length === 0) return new Set();
  const rows = await db.selectFrom('jobs').select('job_key').where('job_key', 'in', [...keys]).where('dead_at_ms', 'is', null).execute();
  return new Set(rows.map((r) => r.job_key));
}

/** When the oldest job now due came due, over these databases; undefined when none is due (metrics' job lag). */
export async function oldestDueJob_ms(databases: readonly JobsDb[], now_ms: number): Promise<number | undefined> {
  let oldest: number | undefined;
  for (const db of databases) {
    const due_ms = await oldestLive_ms(db, 'jobs', 'due_at_ms', now_ms);
    if (due_ms !== undefined) oldest = Math.min(oldest ?? due_ms, due_ms);
  }
  return oldest;
}

/** Jobs set aside after their last attempt, over these databases, waiting for a person. */
export async function deadJobCount(databases: readonly JobsDb[]): Promise<number> {
  let count = 0;
  for (const db of databases) count += await deadCount(db, 'jobs');
  return count;
}
