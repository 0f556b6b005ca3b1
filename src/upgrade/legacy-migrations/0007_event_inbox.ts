// FROZEN legacy migration (see src/upgrade/legacy.ts): never edited, run only to bring a legacy database up to 0013.
import { type Kysely } from 'kysely';
import { withId } from './0001_foundation.ts';

const big = 'bigint' as const;

/**
 * Consumers of events: the inbox of (consumer, event id) pairs already handled, written in the
 * same transaction as the consumer's effect, so a redelivered event changes nothing twice; and
 * the dead letters, an event a consumer failed on after its last attempt, for an admin to replay.
 * Both live in every database (a consumer's inbox sits beside its effect).
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('event_inbox')
    .addColumn('consumer', 'varchar(64)', (c) => c.notNull())
    .addColumn('event_id', 'varchar(36)', (c) => c.notNull())
    .addColumn('handled_at_ms', big, (c) => c.notNull())
    .addPrimaryKeyConstraint('event_inbox_pk', ['consumer', 'event_id'])
    .execute();
  await withId(db, db.schema.createTable('dead_letters'))
    .addColumn('consumer', 'varchar(64)', (c) => c.notNull())
    .addColumn('event_id', 'varchar(36)', (c) => c.notNull())
    .addColumn('event_type', 'varchar(64)', (c) => c.notNull())
    .addColumn('aggregate_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('payload', 'text', (c) => c.notNull())
    .addColumn('event_created_at_ms', big, (c) => c.notNull())
    .addColumn('attempts', big, (c) => c.notNull())
    .addColumn('last_error', 'text')
    .addColumn('dead_at_ms', big, (c) => c.notNull())
    .addColumn('replayed_at_ms', big)
    .addUniqueConstraint('dead_letters_consumer_event', ['consumer', 'event_id'])
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('dead_letters').ifExists().execute();
  await db.schema.dropTable('event_inbox').ifExists().execute();
}
