import { type Kysely } from 'kysely';
import { withId } from '../../platform/db/ddl.ts';

const big = 'bigint' as const;

/** The payment centre's main side: reconciliation (对账) runs and their differences, as legacy migration 0005 made them. */
export async function up(db: Kysely<any>): Promise<void> {
  await withId(db, db.schema.createTable('reconciliation_runs'))
    .addColumn('channel', 'varchar(16)', (column) => column.notNull())
    .addColumn('bill_date', 'varchar(10)', (column) => column.notNull())
    .addColumn('source', 'varchar(255)', (column) => column.notNull())
    .addColumn('bill_rows', big, (column) => column.notNull())
    .addColumn('matched', big, (column) => column.notNull())
    .addColumn('differences', big, (column) => column.notNull())
    .addColumn('started_at_ms', big, (column) => column.notNull())
    .addColumn('finished_at_ms', big, (column) => column.notNull())
    .execute();
  await db.schema.createIndex('reconciliation_runs_day').on('reconciliation_runs').columns(['channel', 'bill_date']).execute();
  await withId(db, db.schema.createTable('reconciliation_differences'))
    .addColumn('run_id', big, (column) => column.notNull())
    .addColumn('kind', 'varchar(24)', (column) => column.notNull())
    .addColumn('item', 'varchar(10)', (column) => column.notNull())
    .addColumn('pay_no', 'varchar(32)', (column) => column.notNull())
    .addColumn('refund_no', 'varchar(32)')
    .addColumn('channel_trade_no', 'varchar(64)')
    .addColumn('ours_fen', big)
    .addColumn('channel_fen', big)
    .addColumn('ours_status', 'varchar(20)')
    .addColumn('action', 'varchar(32)', (column) => column.notNull())
    .addColumn('action_status', 'varchar(12)', (column) => column.notNull())
    .addColumn('note', 'varchar(255)')
    .execute();
  await db.schema.createIndex('reconciliation_differences_run').on('reconciliation_differences').columns(['run_id']).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const table of ['reconciliation_differences', 'reconciliation_runs']) await db.schema.dropTable(table).ifExists().execute();
}
