import { type Kysely } from 'kysely';
import { withId } from '../../platform/db/ddl.ts';

const big = 'bigint' as const;

/**
 * The consistency reconciler's log: a row per repair it made (which check, which key, what it
 * did, when), on the main database, as legacy migration 0008 made it.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await withId(db, db.schema.createTable('consistency_repairs'))
    .addColumn('check_name', 'varchar(64)', (column) => column.notNull())
    .addColumn('item_key', 'varchar(64)', (column) => column.notNull())
    .addColumn('action', 'varchar(64)', (column) => column.notNull())
    .addColumn('detail', 'varchar(500)')
    .addColumn('repaired_at_ms', big, (column) => column.notNull())
    .execute();
  await db.schema.createIndex('consistency_repairs_recent').on('consistency_repairs').columns(['repaired_at_ms', 'id']).execute();
  await db.schema.createIndex('consistency_repairs_by_check').on('consistency_repairs').columns(['check_name', 'repaired_at_ms']).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('consistency_repairs').ifExists().execute();
}
