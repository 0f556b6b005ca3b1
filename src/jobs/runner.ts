import type { Transaction } from 'kysely';

import { ignoreDuplicates } from '../platform/db/sql.ts';
import { claimDue, completeDue, failDue, type Claimed } from '../platform/due-rows.ts';
import { pollingLoop, type PollingLoop } from '../platform/polling-loop.ts';
import type { JobRow, JobsDb, JobsTables } from './tables.ts';

/** Durable delayed work (order timeouts now; auto-confirm and payment polling later). */
export type JobHandler = (payload: any, job: Claimed<JobRow>) => Promise<void>;

export const JOB_BATCH_SIZE = 100;
export const DEFAULT_MAX_JOB_ATTEMPTS = 20;
/** Jobs are due minutes ahead (timeouts); a fifth of a second late is nothing. */
const JOB_IDLE_MS = 200;
const JOB_BATCH_MS = 5;

/**
 * Schedules a job inside the caller's transaction. The key makes it idempotent: a job
 * with the same key already waiting is left as it is.
 */
export async function scheduleJob(
  trx: Transaction<JobsTables>,
  job: { kind: string; key: string; payload: unknown; due_at_ms: number; maxAttempts?: number },
  now_ms: number,
): Promise<void> {
  await trx
    .insertInto('jobs')
    .values({
      kind: job.kind,
      job_key: job.key,
      payload: JSON.stringify(job.payload),
      created_at_ms: now_ms,
      due_at_ms: job.due_at_ms,
      locked_until_ms: 0,
      locked_by: null,
      attempts: 0,
      max_attempts: job.maxAttempts ?? DEFAULT_MAX_JOB_ATTEMPTS,
      last_error: null,
      dead_at_ms: null,
    })
    .$call(ignoreDuplicates(trx))
    .execute();
}

export interface JobRunnerOptions {
  databases: readonly JobsDb[];
  handlers: Readonly<Record<string, JobHandler>>;
  owner: string;
  now: () => number;
  onError: (error: unknown) => void;
}

export function startJobRunner(options: JobRunnerOptions): PollingLoop {
  const pass = async (): Promise<number> => {
    let ran = 0;
    for (const db of options.databases) ran += await runDueJobs(db, options);
    return ran;
  };
  return pollingLoop(pass, { idle_ms: JOB_IDLE_MS, batch_ms: JOB_BATCH_MS }, options.onError);
}

export async function runDueJobs(db: JobsDb, { handlers, owner, now, onError }: Omit<JobRunnerOptions, 'databases'>): Promise<number> {
  const jobs = await claimDue<JobRow>(db, 'jobs', owner, now(), JOB_BATCH_SIZE);
  const done: number[] = [];
  for (const job of jobs) {
    const handler = handlers[job.kind];
    try {
      if (!handler) throw new Error(`no handler for job kind ${job.kind}`);
      await handler(JSON.parse(job.payload), job);
      done.push(job.id);
    } catch (error) {
      onError(error);
      await failDue(db, 'jobs', owner, job, job.max_attempts, error, now());
    }
  }
  await completeDue(db, 'jobs', owner, done);
  return jobs.length;
}
