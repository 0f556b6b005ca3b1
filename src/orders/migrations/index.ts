import type { Migration } from 'kysely';
import * as baseline from './0001_orders.ts';
import * as checkouts from './0002_checkouts.ts';

/** The orders module's migrations, in order (history in migrations_orders). Add a file and a line; never edit a landed one. */
export const ordersMigrations: Record<string, Migration> = {
  '0001_orders': baseline,
  '0002_checkouts': checkouts,
};
