import { sql, type Kysely } from 'kysely';

const big = 'bigint' as const;

/**
 * The payment centre's shard side: payments and refunds live on the order shards, beside their
 * order (a pay number carries the same shard gene). As legacy migrations 0005, 0008 and 0011 left them.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('payment_orders')
    .addColumn('pay_no', 'varchar(32)', (column) => column.primaryKey())
    .addColumn('order_no', 'varchar(32)', (column) => column.notNull())
    .addColumn('buyer_id', big, (column) => column.notNull())
    .addColumn('channel', 'varchar(16)', (column) => column.notNull())
    .addColumn('method', 'varchar(16)', (column) => column.notNull())
    .addColumn('amount_fen', big, (column) => column.notNull())
    .addColumn('currency', 'varchar(3)', (column) => column.notNull())
    .addColumn('status', 'varchar(20)', (column) => column.notNull())
    .addColumn('version', big, (column) => column.notNull())
    // Set while the payment is CREATED: a unique index keeps one open payment per order.
    .addColumn('open_order_no', 'varchar(32)')
    .addColumn('channel_trade_no', 'varchar(64)')
    .addColumn('pay_action', 'text')
    // What the order made of this success: applied, or why it was refunded (重复支付 and the rest).
    .addColumn('disposition', 'varchar(24)')
    .addColumn('refund_committed_fen', big, (column) => column.notNull())
    .addColumn('refunded_fen', big, (column) => column.notNull())
    .addColumn('finished', 'smallint', (column) => column.notNull())
    .addColumn('expires_at_ms', big, (column) => column.notNull())
    .addColumn('created_at_ms', big, (column) => column.notNull())
    .addColumn('updated_at_ms', big, (column) => column.notNull())
    .addColumn('succeeded_at_ms', big)
    .addColumn('closed_at_ms', big)
    .addCheckConstraint('payment_orders_amounts', sql`amount_fen > 0 and refunded_fen >= 0 and refunded_fen <= refund_committed_fen and refund_committed_fen <= amount_fen`)
    .execute();
  await db.schema.createIndex('payment_orders_order').on('payment_orders').columns(['order_no']).execute();
  await db.schema.createIndex('payment_orders_open').on('payment_orders').column('open_order_no').unique().execute();
  await db.schema.createIndex('payment_orders_succeeded').on('payment_orders').columns(['channel', 'succeeded_at_ms']).execute();
  // Succeeded payments not yet taken to their order (the consistency checks).
  await db.schema.createIndex('payment_orders_undecided').on('payment_orders').columns(['status', 'disposition', 'updated_at_ms']).execute();

  await db.schema
    .createTable('payment_refunds')
    .addColumn('refund_no', 'varchar(32)', (column) => column.primaryKey())
    .addColumn('pay_no', 'varchar(32)', (column) => column.notNull())
    .addColumn('order_no', 'varchar(32)', (column) => column.notNull())
    .addColumn('channel', 'varchar(16)', (column) => column.notNull())
    .addColumn('amount_fen', big, (column) => column.notNull())
    .addColumn('reason', 'varchar(24)', (column) => column.notNull())
    // JSON list of the order line numbers this refund covers; null for an amount (duplicate, 价保).
    .addColumn('line_nos', 'text')
    .addColumn('request_key', 'varchar(128)')
    .addColumn('requested_by', 'varchar(64)', (column) => column.notNull())
    .addColumn('status', 'varchar(20)', (column) => column.notNull())
    .addColumn('version', big, (column) => column.notNull())
    .addColumn('channel_refund_no', 'varchar(64)')
    .addColumn('failure', 'varchar(255)')
    .addColumn('created_at_ms', big, (column) => column.notNull())
    .addColumn('updated_at_ms', big, (column) => column.notNull())
    .addColumn('succeeded_at_ms', big)
    // A hash of what was asked with an Idempotency-Key: the same key with another request is refused.
    // Refunds written before legacy migration 0011 have none and are matched by key alone.
    .addColumn('request_hash', 'varchar(64)')
    .addCheckConstraint('payment_refunds_amount', sql`amount_fen > 0`)
    .execute();
  await db.schema.createIndex('payment_refunds_pay').on('payment_refunds').columns(['pay_no']).execute();
  await db.schema.createIndex('payment_refunds_request').on('payment_refunds').columns(['order_no', 'request_key']).unique().execute();
  await db.schema.createIndex('payment_refunds_succeeded').on('payment_refunds').columns(['channel', 'succeeded_at_ms']).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const table of ['payment_refunds', 'payment_orders']) await db.schema.dropTable(table).ifExists().execute();
}
