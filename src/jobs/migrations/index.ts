import type { Migration } from 'kysely';
import * as baseline from './0001_jobs.ts';

/** The jobs module's migrations, in order (history in migrations_jobs). Add a file and a line; never edit a landed one. */
export const jobsMigrations: Record<string, Migration> = {
  '0001_jobs': baseline,
};
