import { type Kysely } from 'kysely';
import { withId } from '../../platform/db/ddl.ts';

const big = 'bigint' as const;

/** The buyers the platform knows, as legacy migration 0001 made them. */
export async function up(db: Kysely<any>): Promise<void> {
  await withId(db, db.schema.createTable('buyers'))
    .addColumn('name', 'varchar(200)', (column) => column.notNull())
    .addColumn('member_level', big, (column) => column.notNull().defaultTo(0))
    .addColumn('created_at_ms', big, (column) => column.notNull())
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('buyers').ifExists().execute();
}
