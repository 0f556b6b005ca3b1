import type { Migration } from 'kysely';
import * as baseline from './0001_cart.ts';

/** The cart module's migrations, in order (history in migrations_cart). Add a file and a line; never edit a landed one. */
export const cartMigrations: Record<string, Migration> = {
  '0001_cart': baseline,
};
