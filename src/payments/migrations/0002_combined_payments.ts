import { sql, type Kysely } from 'kysely';
import { dialectOf } from '../../platform/db/database.ts';

/**
 * 合单支付: a checkout of several merchants is paid once, with one sub-payment per order. Each
 * sub-payment stays a payment of its own (its own trade at the channel, its own success, refunds,
 * queries and bill lines); the ones made together share their combined number (WeChat
 * combine_out_trade_no, Alipay out_merge_no, CCB Main_Ordr_No). Each also names the merchant the
 * money is for at the channel (sub_mchid, smid, the custody bank's merchant number), absent for
 * the platform's own goods (自营). Payments made before are single trades: both stay null.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('payment_orders').addColumn('combine_no', 'varchar(32)').execute();
  if (dialectOf(db) === 'sqlite') {
    await db.schema.alterTable('payment_orders').addColumn('sub_merchant_id', 'varchar(64)', (column) => column.check(sql`sub_merchant_id is null or length(sub_merchant_id) > 0`)).execute();
  } else {
    await db.schema.alterTable('payment_orders').addColumn('sub_merchant_id', 'varchar(64)').execute();
    await db.schema.alterTable('payment_orders').addCheckConstraint('payment_orders_sub_merchant', sql`sub_merchant_id is null or length(sub_merchant_id) > 0`).execute();
  }
  await db.schema.createIndex('payment_orders_by_combine').on('payment_orders').column('combine_no').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  // DROP INDEX … ON is MySQL's alone (its indexes are per table); SQLite and PostgreSQL refuse it.
  const dropIndex = db.schema.dropIndex('payment_orders_by_combine');
  await (dialectOf(db) === 'mysql' ? dropIndex.on('payment_orders') : dropIndex).execute();
  if (dialectOf(db) !== 'sqlite') await db.schema.alterTable('payment_orders').dropConstraint('payment_orders_sub_merchant').execute();
  await db.schema.alterTable('payment_orders').dropColumn('sub_merchant_id').execute();
  await db.schema.alterTable('payment_orders').dropColumn('combine_no').execute();
}
