import type { Migration } from 'kysely';
import * as baseline from './0001_leaders.ts';

/** The leaders module's migrations, in order (history in migrations_leaders). Add a file and a line; never edit a landed one. */
export const leadersMigrations: Record<string, Migration> = {
  '0001_leaders': baseline,
};
