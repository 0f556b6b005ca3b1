// FROZEN legacy migration (see src/upgrade/legacy.ts): never edited, run only to bring a legacy database up to 0013.
import { type Kysely } from 'kysely';

/** The inbox is pruned by age: an index on when each row was handled, so pruning seeks. */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.createIndex('event_inbox_handled').on('event_inbox').column('handled_at_ms').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('event_inbox_handled').on('event_inbox').execute();
}
