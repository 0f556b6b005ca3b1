import { type Kysely } from 'kysely';
import { withId } from '../../platform/db/ddl.ts';

const big = 'bigint' as const;

/**
 * The outbox, the consumers' inbox and their dead letters, in every database (each is written
 * inside the business transaction beside it), as legacy migrations 0001, 0007 and 0009 left them.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await withId(db, db.schema.createTable('outbox_events'))
    .addColumn('event_id', 'varchar(36)', (column) => column.notNull().unique())
    .addColumn('event_type', 'varchar(64)', (column) => column.notNull())
    .addColumn('aggregate_id', 'varchar(64)', (column) => column.notNull())
    .addColumn('payload', 'text', (column) => column.notNull())
    .addColumn('created_at_ms', big, (column) => column.notNull())
    .addColumn('due_at_ms', big, (column) => column.notNull())
    .addColumn('locked_until_ms', big, (column) => column.notNull())
    .addColumn('locked_by', 'varchar(64)')
    .addColumn('attempts', big, (column) => column.notNull())
    .addColumn('last_error', 'text')
    .addColumn('dead_at_ms', big)
    .execute();
  await db.schema.createIndex('outbox_events_due').on('outbox_events').columns(['due_at_ms', 'id']).execute();
  // The (consumer, event id) pairs already handled, written with the consumer's effect, so a
  // redelivered event changes nothing twice; pruned by age, by index.
  await db.schema
    .createTable('event_inbox')
    .addColumn('consumer', 'varchar(64)', (column) => column.notNull())
    .addColumn('event_id', 'varchar(36)', (column) => column.notNull())
    .addColumn('handled_at_ms', big, (column) => column.notNull())
    .addPrimaryKeyConstraint('event_inbox_pk', ['consumer', 'event_id'])
    .execute();
  await db.schema.createIndex('event_inbox_handled').on('event_inbox').column('handled_at_ms').execute();
  // An event a consumer failed on after its last attempt, for an admin to replay.
  await withId(db, db.schema.createTable('dead_letters'))
    .addColumn('consumer', 'varchar(64)', (column) => column.notNull())
    .addColumn('event_id', 'varchar(36)', (column) => column.notNull())
    .addColumn('event_type', 'varchar(64)', (column) => column.notNull())
    .addColumn('aggregate_id', 'varchar(64)', (column) => column.notNull())
    .addColumn('payload', 'text', (column) => column.notNull())
    .addColumn('event_created_at_ms', big, (column) => column.notNull())
    .addColumn('attempts', big, (column) => column.notNull())
    .addColumn('last_error', 'text')
    .addColumn('dead_at_ms', big, (column) => column.notNull())
    .addColumn('replayed_at_ms', big)
    .addUniqueConstraint('dead_letters_consumer_event', ['consumer', 'event_id'])
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const table of ['dead_letters', 'event_inbox', 'outbox_events']) await db.schema.dropTable(table).ifExists().execute();
}
