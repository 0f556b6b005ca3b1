// FROZEN legacy migration (see src/upgrade/legacy.ts): never edited, run only to bring a legacy database up to 0013.
import { type Kysely } from 'kysely';
import { withId } from './0001_foundation.ts';

const big = 'bigint' as const;

/**
 * The consistency reconciler: a row per repair it made (which check, which key, what it did,
 * when), and the indexes its checks read by, so that each check's query seeks the few rows in
 * flight instead of scanning a table's whole history. The tables exist in every database; the
 * repair log is written on the main one.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await withId(db, db.schema.createTable('consistency_repairs'))
    .addColumn('check_name', 'varchar(64)', (c) => c.notNull())
    .addColumn('item_key', 'varchar(64)', (c) => c.notNull())
    .addColumn('action', 'varchar(64)', (c) => c.notNull())
    .addColumn('detail', 'varchar(500)')
    .addColumn('repaired_at_ms', big, (c) => c.notNull())
    .execute();
  await db.schema.createIndex('consistency_repairs_recent').on('consistency_repairs').columns(['repaired_at_ms', 'id']).execute();
  await db.schema.createIndex('consistency_repairs_by_check').on('consistency_repairs').columns(['check_name', 'repaired_at_ms']).execute();
  // Unpaid orders by deadline; succeeded payments not yet taken to their order; coupons by state;
  // accounts holding frozen points.
  await db.schema.createIndex('orders_by_status_expiry').on('orders').columns(['status', 'expires_at_ms']).execute();
  await db.schema.createIndex('payment_orders_undecided').on('payment_orders').columns(['status', 'disposition', 'updated_at_ms']).execute();
  await db.schema.createIndex('coupons_by_state').on('coupons').columns(['state', 'updated_at_ms']).execute();
  await db.schema.createIndex('points_accounts_frozen').on('points_accounts').columns(['frozen']).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('points_accounts_frozen').on('points_accounts').execute();
  await db.schema.dropIndex('coupons_by_state').on('coupons').execute();
  await db.schema.dropIndex('payment_orders_undecided').on('payment_orders').execute();
  await db.schema.dropIndex('orders_by_status_expiry').on('orders').execute();
  await db.schema.dropTable('consistency_repairs').execute();
}
