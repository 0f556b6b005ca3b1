// FROZEN legacy migration (see src/upgrade/legacy.ts): never edited, run only to bring a legacy database up to 0013.
import { sql, type Kysely } from 'kysely';
import { withId } from './0001_foundation.ts';

const big = 'bigint' as const;

/**
 * The payment centre's tables, on the order shards (a payment lives beside its order; its
 * pay number carries the same shard gene), and reconciliation results on the main database.
 * Orders learn refunds: an amount refunded so far and, per line, when it was refunded.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('payment_orders')
    .addColumn('pay_no', 'varchar(32)', (c) => c.primaryKey())
    .addColumn('order_no', 'varchar(32)', (c) => c.notNull())
    .addColumn('buyer_id', big, (c) => c.notNull())
    .addColumn('channel', 'varchar(16)', (c) => c.notNull())
    .addColumn('method', 'varchar(16)', (c) => c.notNull())
    .addColumn('amount_fen', big, (c) => c.notNull())
    .addColumn('currency', 'varchar(3)', (c) => c.notNull())
    .addColumn('status', 'varchar(20)', (c) => c.notNull())
    .addColumn('version', big, (c) => c.notNull())
    // Set while the payment is CREATED: a unique index keeps one open payment per order.
    .addColumn('open_order_no', 'varchar(32)')
    .addColumn('channel_trade_no', 'varchar(64)')
    .addColumn('pay_action', 'text')
    // What the order made of this success: applied, or why it was refunded (重复支付 and the rest).
    .addColumn('disposition', 'varchar(24)')
    .addColumn('refund_committed_fen', big, (c) => c.notNull())
    .addColumn('refunded_fen', big, (c) => c.notNull())
    .addColumn('finished', 'smallint', (c) => c.notNull())
    .addColumn('expires_at_ms', big, (c) => c.notNull())
    .addColumn('created_at_ms', big, (c) => c.notNull())
    .addColumn('updated_at_ms', big, (c) => c.notNull())
    .addColumn('succeeded_at_ms', big)
    .addColumn('closed_at_ms', big)
    .addCheckConstraint('payment_orders_amounts', sql`amount_fen > 0 and refunded_fen >= 0 and refunded_fen <= refund_committed_fen and refund_committed_fen <= amount_fen`)
    .execute();
  await db.schema.createIndex('payment_orders_order').on('payment_orders').columns(['order_no']).execute();
  await db.schema.createIndex('payment_orders_open').on('payment_orders').column('open_order_no').unique().execute();
  await db.schema.createIndex('payment_orders_succeeded').on('payment_orders').columns(['channel', 'succeeded_at_ms']).execute();

  await db.schema
    .createTable('payment_refunds')
    .addColumn('refund_no', 'varchar(32)', (c) => c.primaryKey())
    .addColumn('pay_no', 'varchar(32)', (c) => c.notNull())
    .addColumn('order_no', 'varchar(32)', (c) => c.notNull())
    .addColumn('channel', 'varchar(16)', (c) => c.notNull())
    .addColumn('amount_fen', big, (c) => c.notNull())
    .addColumn('reason', 'varchar(24)', (c) => c.notNull())
    // JSON list of the order line numbers this refund covers; null for an amount (duplicate, 价保).
    .addColumn('line_nos', 'text')
    .addColumn('request_key', 'varchar(128)')
    .addColumn('requested_by', 'varchar(64)', (c) => c.notNull())
    .addColumn('status', 'varchar(20)', (c) => c.notNull())
    .addColumn('version', big, (c) => c.notNull())
    .addColumn('channel_refund_no', 'varchar(64)')
    .addColumn('failure', 'varchar(255)')
    .addColumn('created_at_ms', big, (c) => c.notNull())
    .addColumn('updated_at_ms', big, (c) => c.notNull())
    .addColumn('succeeded_at_ms', big)
    .addCheckConstraint('payment_refunds_amount', sql`amount_fen > 0`)
    .execute();
  await db.schema.createIndex('payment_refunds_pay').on('payment_refunds').columns(['pay_no']).execute();
  await db.schema.createIndex('payment_refunds_request').on('payment_refunds').columns(['order_no', 'request_key']).unique().execute();
  await db.schema.createIndex('payment_refunds_succeeded').on('payment_refunds').columns(['channel', 'succeeded_at_ms']).execute();

  await db.schema.alterTable('orders').addColumn('refunded_fen', big, (c) => c.notNull().defaultTo(0)).execute();
  await db.schema.alterTable('order_lines').addColumn('refunded_at_ms', big).execute();

  await withId(db, db.schema.createTable('reconciliation_runs'))
    .addColumn('channel', 'varchar(16)', (c) => c.notNull())
    .addColumn('bill_date', 'varchar(10)', (c) => c.notNull())
    .addColumn('source', 'varchar(255)', (c) => c.notNull())
    .addColumn('bill_rows', big, (c) => c.notNull())
    .addColumn('matched', big, (c) => c.notNull())
    .addColumn('differences', big, (c) => c.notNull())
    .addColumn('started_at_ms', big, (c) => c.notNull())
    .addColumn('finished_at_ms', big, (c) => c.notNull())
    .execute();
  await db.schema.createIndex('reconciliation_runs_day').on('reconciliation_runs').columns(['channel', 'bill_date']).execute();
  await withId(db, db.schema.createTable('reconciliation_differences'))
    .addColumn('run_id', big, (c) => c.notNull())
    .addColumn('kind', 'varchar(24)', (c) => c.notNull())
    .addColumn('item', 'varchar(10)', (c) => c.notNull())
    .addColumn('pay_no', 'varchar(32)', (c) => c.notNull())
    .addColumn('refund_no', 'varchar(32)')
    .addColumn('channel_trade_no', 'varchar(64)')
    .addColumn('ours_fen', big)
    .addColumn('channel_fen', big)
    .addColumn('ours_status', 'varchar(20)')
    .addColumn('action', 'varchar(32)', (c) => c.notNull())
    .addColumn('action_status', 'varchar(12)', (c) => c.notNull())
    .addColumn('note', 'varchar(255)')
    .execute();
  await db.schema.createIndex('reconciliation_differences_run').on('reconciliation_differences').columns(['run_id']).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const table of ['reconciliation_differences', 'reconciliation_runs', 'payment_refunds', 'payment_orders']) {
    await db.schema.dropTable(table).ifExists().execute();
  }
  await db.schema.alterTable('order_lines').dropColumn('refunded_at_ms').execute();
  await db.schema.alterTable('orders').dropColumn('refunded_fen').execute();
}
