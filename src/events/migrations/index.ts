import type { Migration } from 'kysely';
import * as baseline from './0001_events.ts';

/** The events module's migrations, in order (history in migrations_events). Add a file and a line; never edit a landed one. */
export const eventsMigrations: Record<string, Migration> = {
  '0001_events': baseline,
};
