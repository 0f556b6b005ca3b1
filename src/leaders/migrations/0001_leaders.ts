import { type Kysely } from 'kysely';
import { withId } from '../../platform/db/ddl.ts';

const big = 'bigint' as const;

/** The community leaders (团长) and their pickup points, as legacy migration 0001 made them. */
export async function up(db: Kysely<any>): Promise<void> {
  await withId(db, db.schema.createTable('leaders'))
    .addColumn('name', 'varchar(200)', (column) => column.notNull())
    .addColumn('community', 'varchar(200)', (column) => column.notNull())
    .addColumn('address', 'varchar(400)', (column) => column.notNull())
    .addColumn('created_at_ms', big, (column) => column.notNull())
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('leaders').ifExists().execute();
}
