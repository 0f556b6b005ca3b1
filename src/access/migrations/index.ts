import type { Migration } from 'kysely';
import * as baseline from './0001_access.ts';

/** The access module's migrations, in order (history in migrations_access). Add a file and a line; never edit a landed one. */
export const accessMigrations: Record<string, Migration> = {
  '0001_access': baseline,
};
