import type { Migration } from 'kysely';
import * as baseline from './0001_points.ts';

/** The points module's migrations, in order (history in migrations_points). Add a file and a line; never edit a landed one. */
export const pointsMigrations: Record<string, Migration> = {
  '0001_points': baseline,
};
