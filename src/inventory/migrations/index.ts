import type { Migration } from 'kysely';
import * as baseline from './0001_inventory.ts';

/** The inventory module's migrations, in order (history in migrations_inventory). Add a file and a line; never edit a landed one. */
export const inventoryMigrations: Record<string, Migration> = {
  '0001_inventory': baseline,
};
