import { type Kysely } from 'kysely';
import { withId } from '../../platform/db/ddl.ts';

const big = 'bigint' as const;

/** The jobs table, in every database (a job is written inside the business transaction beside it), as legacy migration 0001 made it. */
export async function up(db: Kysely<any>): Promise<void> {
  await withId(db, db.schema.createTable('jobs'))
    .addColumn('kind', 'varchar(64)', (column) => column.notNull())
    .addColumn('job_key', 'varchar(128)', (column) => column.notNull().unique())
    .addColumn('payload', 'text', (column) => column.notNull())
    .addColumn('created_at_ms', big, (column) => column.notNull())
    .addColumn('due_at_ms', big, (column) => column.notNull())
    .addColumn('locked_until_ms', big, (column) => column.notNull())
    .addColumn('locked_by', 'varchar(64)')
    .addColumn('attempts', big, (column) => column.notNull())
    .addColumn('max_attempts', big, (column) => column.notNull())
    .addColumn('last_error', 'text')
    .addColumn('dead_at_ms', big)
    .execute();
  await db.schema.createIndex('jobs_due').on('jobs').columns(['due_at_ms', 'id']).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('jobs').ifExists().execute();
}
