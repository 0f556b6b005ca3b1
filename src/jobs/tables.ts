import type { Generated, Kysely, Transaction } from 'kysely';

/** The jobs module's tables; no other module names them. Amounts are BIGINT fen; times BIGINT ms since the epoch, UTC. */
export interface JobsTables {
  jobs: JobRow;
}

export type JobsDb = Kysely<JobsTables>;

export interface JobRow {
  id: Generated<number>;
  kind: string;
  job_key: string;
  payload: string;
  created_at_ms: number;
  due_at_ms: number;
  locked_until_ms: number;
  locked_by: string | null;
  attempts: number;
  max_attempts: number;
  last_error: string | null;
  dead_at_ms: number | null;
}
