import type { Migration } from 'kysely';
import * as baseline from './0001_buyers.ts';

/** The buyers module's migrations, in order (history in migrations_buyers). Add a file and a line; never edit a landed one. */
export const buyersMigrations: Record<string, Migration> = {
  '0001_buyers': baseline,
};
