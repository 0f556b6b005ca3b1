import { sql, type Kysely } from 'kysely';
import { caseSensitiveKey } from '../../platform/db/ddl.ts';

const big = 'bigint' as const;

/**
 * The orders module's tables, one copy per order shard, as legacy migrations 0001–0013 left them
 * (a column a later legacy migration added comes last, in the order it was added).
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('orders')
    .addColumn('order_no', 'varchar(32)', (column) => column.primaryKey())
    .addColumn('buyer_id', big, (column) => column.notNull())
    .addColumn('leader_id', big, (column) => column.notNull())
    .addColumn('status', 'varchar(32)', (column) => column.notNull())
    .addColumn('version', big, (column) => column.notNull())
    .addColumn('currency', 'varchar(3)', (column) => column.notNull())
    .addColumn('items_total_fen', big, (column) => column.notNull())
    .addColumn('discount_total_fen', big, (column) => column.notNull())
    .addColumn('shipping_fen', big, (column) => column.notNull())
    .addColumn('payable_fen', big, (column) => column.notNull())
    .addColumn('remark', 'varchar(200)')
    .addColumn('payment_no', 'varchar(64)')
    .addColumn('paid_fen', big)
    .addColumn('cancel_reason', 'varchar(32)')
    .addColumn('created_at_ms', big, (column) => column.notNull())
    .addColumn('updated_at_ms', big, (column) => column.notNull())
    .addColumn('expires_at_ms', big, (column) => column.notNull())
    .addColumn('paid_at_ms', big)
    .addColumn('cancelled_at_ms', big)
    // What the order holds: the coupons it locked (JSON list) and the points it froze.
    .addColumn('coupon_ids', 'text')
    .addColumn('points_used', big, (column) => column.notNull().defaultTo(0))
    .addColumn('refunded_fen', big, (column) => column.notNull().defaultTo(0))
    .addCheckConstraint(
      'orders_amounts',
      sql`items_total_fen >= 0 and discount_total_fen >= 0 and shipping_fen >= 0 and payable_fen >= 0 and payable_fen = items_total_fen - discount_total_fen + shipping_fen`,
    )
    .execute();
  await db.schema.createIndex('orders_by_buyer').on('orders').columns(['buyer_id', 'order_no']).execute();
  // Unpaid orders by deadline (the consistency checks); a buyer's unpaid orders (every checkout counts them).
  await db.schema.createIndex('orders_by_status_expiry').on('orders').columns(['status', 'expires_at_ms']).execute();
  await db.schema.createIndex('orders_by_buyer_status').on('orders').columns(['buyer_id', 'status']).execute();
  await db.schema
    .createTable('order_lines')
    .addColumn('order_no', 'varchar(32)', (column) => column.notNull())
    .addColumn('line_no', big, (column) => column.notNull())
    .addColumn('activity_id', big, (column) => column.notNull())
    .addColumn('activity_sku_id', big, (column) => column.notNull())
    .addColumn('sku_id', big, (column) => column.notNull())
    .addColumn('merchant_id', big, (column) => column.notNull())
    .addColumn('title', 'varchar(200)', (column) => column.notNull())
    .addColumn('inventory_mode', 'varchar(20)', (column) => column.notNull())
    .addColumn('unit_price_fen', big, (column) => column.notNull())
    .addColumn('quantity', big, (column) => column.notNull())
    .addColumn('subtotal_fen', big, (column) => column.notNull())
    .addColumn('discount_fen', big, (column) => column.notNull())
    .addColumn('shipping_fen', big, (column) => column.notNull())
    .addColumn('payable_fen', big, (column) => column.notNull())
    // The full price breakdown per line (JSON), and when the line was refunded.
    .addColumn('discounts', 'text')
    .addColumn('price_segments', 'text')
    .addColumn('refunded_at_ms', big)
    .addPrimaryKeyConstraint('order_lines_pk', ['order_no', 'line_no'])
    .addCheckConstraint(
      'order_lines_amounts',
      sql`quantity > 0 and subtotal_fen >= 0 and shipping_fen >= 0 and payable_fen = subtotal_fen - discount_fen + shipping_fen and payable_fen >= 0`,
    )
    .execute();
  await db.schema
    .createTable('purchase_counters')
    .addColumn('buyer_id', big, (column) => column.notNull())
    .addColumn('activity_sku_id', big, (column) => column.notNull())
    .addColumn('quantity', big, (column) => column.notNull())
    .addPrimaryKeyConstraint('purchase_counters_pk', ['buyer_id', 'activity_sku_id'])
    .addCheckConstraint('purchase_counters_quantity', sql`quantity >= 0`)
    .execute();
  await db.schema
    .createTable('idempotency_keys')
    .addColumn('buyer_id', big, (column) => column.notNull())
    .addColumn('idem_key', caseSensitiveKey(db, 128), (column) => column.notNull())
    .addColumn('request_hash', 'varchar(64)', (column) => column.notNull())
    .addColumn('order_no', 'varchar(32)', (column) => column.notNull())
    .addColumn('state', 'varchar(16)', (column) => column.notNull())
    .addColumn('response_status', 'integer')
    .addColumn('response_body', 'text')
    .addColumn('lease_token', 'varchar(36)')
    .addColumn('locked_until_ms', big, (column) => column.notNull())
    .addColumn('created_at_ms', big, (column) => column.notNull())
    .addPrimaryKeyConstraint('idempotency_keys_pk', ['buyer_id', 'idem_key'])
    .execute();
  await db.schema.createIndex('idempotency_keys_by_order').on('idempotency_keys').column('order_no').execute();
  // 价保 claims: one per order line at most.
  await db.schema
    .createTable('price_protection_claims')
    .addColumn('order_no', 'varchar(32)', (column) => column.notNull())
    .addColumn('line_no', big, (column) => column.notNull())
    .addColumn('buyer_id', big, (column) => column.notNull())
    .addColumn('activity_sku_id', big, (column) => column.notNull())
    .addColumn('paid_unit_price_fen', big, (column) => column.notNull())
    .addColumn('current_unit_price_fen', big, (column) => column.notNull())
    .addColumn('quantity', big, (column) => column.notNull())
    .addColumn('amount_fen', big, (column) => column.notNull())
    .addColumn('claimed_at_ms', big, (column) => column.notNull())
    .addPrimaryKeyConstraint('price_protection_claims_pk', ['order_no', 'line_no'])
    .execute();
  // One row per buyer counting the orders they placed; raising it is the first write of an
  // order's transaction, so a buyer's order writes queue behind one another.
  await db.schema
    .createTable('buyer_checkouts')
    .addColumn('buyer_id', big, (column) => column.primaryKey())
    .addColumn('placed_orders', big, (column) => column.notNull())
    .addCheckConstraint('buyer_checkouts_placed', sql`placed_orders >= 0`)
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const table of ['buyer_checkouts', 'price_protection_claims', 'idempotency_keys', 'purchase_counters', 'order_lines', 'orders']) {
    await db.schema.dropTable(table).ifExists().execute();
  }
}
