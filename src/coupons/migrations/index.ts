import type { Migration } from 'kysely';
import * as baseline from './0001_coupons.ts';

/** The coupons module's migrations, in order (history in migrations_coupons). Add a file and a line; never edit a landed one. */
export const couponsMigrations: Record<string, Migration> = {
  '0001_coupons': baseline,
};
