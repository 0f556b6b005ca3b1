import type { Migration } from 'kysely';
import * as baseline from './0001_promotions.ts';
import * as handover from './0002_handover.ts';

/** The promotions module's migrations, in order (history in migrations_promotions). Add a file and a line; never edit a landed one. */
export const promotionsMigrations: Record<string, Migration> = {
  '0001_promotions': baseline,
  '0002_handover': handover,
};
