import type { Migration } from 'kysely';
import * as baseline from './0001_consistency.ts';

/** The consistency module's migrations, in order (history in migrations_consistency). Add a file and a line; never edit a landed one. */
export const consistencyMigrations: Record<string, Migration> = {
  '0001_consistency': baseline,
};
