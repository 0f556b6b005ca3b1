import { sql, type Kysely } from 'kysely';
import { withId } from '../../platform/db/ddl.ts';

const big = 'bigint' as const;

/**
 * Points (积分) accounts and their journal, as legacy migrations 0002 and 0008 left them. Frozen
 * points are the ones locked by unpaid orders.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('points_accounts')
    .addColumn('buyer_id', big, (column) => column.primaryKey())
    .addColumn('balance', big, (column) => column.notNull())
    .addColumn('frozen', big, (column) => column.notNull())
    .addColumn('updated_at_ms', big, (column) => column.notNull())
    .addCheckConstraint('points_never_negative', sql`balance >= 0 and frozen >= 0 and frozen <= balance`)
    .execute();
  // The consistency checks read the accounts holding frozen points.
  await db.schema.createIndex('points_accounts_frozen').on('points_accounts').columns(['frozen']).execute();
  await withId(db, db.schema.createTable('points_journal'))
    .addColumn('buyer_id', big, (column) => column.notNull())
    .addColumn('movement', 'varchar(16)', (column) => column.notNull())
    .addColumn('points', big, (column) => column.notNull())
    .addColumn('order_no', 'varchar(32)')
    /** Makes each movement happen once: (order, movement) for order-bound ones, a caller's id for grants. */
    .addColumn('dedupe_key', 'varchar(80)', (column) => column.notNull().unique())
    .addColumn('balance_after', big, (column) => column.notNull())
    .addColumn('frozen_after', big, (column) => column.notNull())
    .addColumn('note', 'varchar(200)')
    .addColumn('created_at_ms', big, (column) => column.notNull())
    .execute();
  await db.schema.createIndex('points_journal_by_buyer').on('points_journal').columns(['buyer_id', 'id']).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const table of ['points_journal', 'points_accounts']) await db.schema.dropTable(table).ifExists().execute();
}
