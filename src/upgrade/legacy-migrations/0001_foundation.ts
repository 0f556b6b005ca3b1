// FROZEN legacy migration (see src/upgrade/legacy.ts): never edited, run only to bring a legacy database up to 0013.
import { sql, type CreateTableBuilder, type Kysely } from 'kysely';
import { dialectOf } from '../../platform/db/database.ts';

/** An auto-incrementing BIGINT primary key on each engine. */
export function withId(db: Kysely<any>, table: CreateTableBuilder<any, any>): CreateTableBuilder<any, any> {
  const dialect = dialectOf(db);
  if (dialect === 'postgres') return table.addColumn('id', 'bigserial', (c) => c.primaryKey());
  if (dialect === 'mysql') return table.addColumn('id', 'bigint', (c) => c.primaryKey().autoIncrement());
  return table.addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement());
}

const big = 'bigint' as const;

export async function up(db: Kysely<any>): Promise<void> {
  // catalog
  await withId(db, db.schema.createTable('merchants'))
    .addColumn('name', 'varchar(200)', (c) => c.notNull())
    .addColumn('created_at_ms', big, (c) => c.notNull())
    .execute();
  await withId(db, db.schema.createTable('products'))
    .addColumn('merchant_id', big, (c) => c.notNull())
    .addColumn('title', 'varchar(200)', (c) => c.notNull())
    .addColumn('category', 'varchar(100)')
    .addColumn('created_at_ms', big, (c) => c.notNull())
    .addColumn('updated_at_ms', big, (c) => c.notNull())
    .execute();
  await db.schema.createIndex('products_by_merchant').on('products').column('merchant_id').execute();
  await withId(db, db.schema.createTable('skus'))
    .addColumn('product_id', big, (c) => c.notNull())
    .addColumn('merchant_id', big, (c) => c.notNull())
    .addColumn('title', 'varchar(200)', (c) => c.notNull())
    .addColumn('list_price_fen', big, (c) => c.notNull())
    .addColumn('weight_g', big, (c) => c.notNull())
    .addColumn('created_at_ms', big, (c) => c.notNull())
    .addColumn('updated_at_ms', big, (c) => c.notNull())
    .addCheckConstraint('skus_amounts', sql`list_price_fen >= 0 and weight_g >= 0`)
    .execute();
  await db.schema.createIndex('skus_by_product').on('skus').column('product_id').execute();
  await withId(db, db.schema.createTable('activities'))
    .addColumn('title', 'varchar(200)', (c) => c.notNull())
    .addColumn('starts_at_ms', big, (c) => c.notNull())
    .addColumn('ends_at_ms', big, (c) => c.notNull())
    .addColumn('order_cutoff_at_ms', big, (c) => c.notNull())
    .addColumn('pickup_date', 'varchar(10)', (c) => c.notNull())
    .addColumn('inventory_mode', 'varchar(20)', (c) => c.notNull())
    .addColumn('created_at_ms', big, (c) => c.notNull())
    .addColumn('updated_at_ms', big, (c) => c.notNull())
    .addCheckConstraint('activities_window', sql`starts_at_ms < ends_at_ms and order_cutoff_at_ms <= ends_at_ms`)
    .execute();
  await withId(db, db.schema.createTable('activity_skus'))
    .addColumn('activity_id', big, (c) => c.notNull())
    .addColumn('sku_id', big, (c) => c.notNull())
    .addColumn('price_fen', big, (c) => c.notNull())
    .addColumn('purchase_limit', big)
    .addColumn('created_at_ms', big, (c) => c.notNull())
    .addColumn('updated_at_ms', big, (c) => c.notNull())
    .addUniqueConstraint('activity_skus_once', ['activity_id', 'sku_id'])
    .addCheckConstraint('activity_skus_amounts', sql`price_fen >= 0 and (purchase_limit is null or purchase_limit > 0)`)
    .execute();

  // buyers and leaders
  await withId(db, db.schema.createTable('buyers'))
    .addColumn('name', 'varchar(200)', (c) => c.notNull())
    .addColumn('member_level', big, (c) => c.notNull().defaultTo(0))
    .addColumn('created_at_ms', big, (c) => c.notNull())
    .execute();
  await withId(db, db.schema.createTable('leaders'))
    .addColumn('name', 'varchar(200)', (c) => c.notNull())
    .addColumn('community', 'varchar(200)', (c) => c.notNull())
    .addColumn('address', 'varchar(400)', (c) => c.notNull())
    .addColumn('created_at_ms', big, (c) => c.notNull())
    .execute();

  // inventory: the stock ledger holds available + reserved + sold = total, in code and here.
  await db.schema
    .createTable('stock')
    .addColumn('activity_sku_id', big, (c) => c.primaryKey())
    .addColumn('total', big, (c) => c.notNull())
    .addColumn('available', big, (c) => c.notNull())
    .addColumn('reserved', big, (c) => c.notNull())
    .addColumn('sold', big, (c) => c.notNull())
    .addColumn('updated_at_ms', big, (c) => c.notNull())
    .addCheckConstraint(
      'stock_ledger_balances',
      sql`available >= 0 and reserved >= 0 and sold >= 0 and available + reserved + sold = total`,
    )
    .execute();
  await db.schema
    .createTable('stock_reservations')
    .addColumn('order_no', 'varchar(32)', (c) => c.notNull())
    .addColumn('activity_sku_id', big, (c) => c.notNull())
    .addColumn('quantity', big, (c) => c.notNull())
    .addColumn('state', 'varchar(16)', (c) => c.notNull())
    .addColumn('created_at_ms', big, (c) => c.notNull())
    .addColumn('updated_at_ms', big, (c) => c.notNull())
    .addPrimaryKeyConstraint('stock_reservations_pk', ['order_no', 'activity_sku_id'])
    .addCheckConstraint('stock_reservations_quantity', sql`quantity > 0`)
    .execute();
  await db.schema.createIndex('stock_reservations_by_state').on('stock_reservations').columns(['state', 'created_at_ms']).execute();

  // cart
  await db.schema
    .createTable('cart_lines')
    .addColumn('buyer_id', big, (c) => c.notNull())
    .addColumn('activity_sku_id', big, (c) => c.notNull())
    .addColumn('quantity', big, (c) => c.notNull())
    .addColumn('selected', 'integer', (c) => c.notNull())
    .addColumn('hold_expires_at_ms', big)
    .addColumn('added_at_ms', big, (c) => c.notNull())
    .addColumn('updated_at_ms', big, (c) => c.notNull())
    .addPrimaryKeyConstraint('cart_lines_pk', ['buyer_id', 'activity_sku_id'])
    .addCheckConstraint('cart_lines_quantity', sql`quantity > 0`)
    .execute();

  // orders (one copy per order shard)
  await db.schema
    .createTable('orders')
    .addColumn('order_no', 'varchar(32)', (c) => c.primaryKey())
    .addColumn('buyer_id', big, (c) => c.notNull())
    .addColumn('leader_id', big, (c) => c.notNull())
    .addColumn('status', 'varchar(32)', (c) => c.notNull())
    .addColumn('version', big, (c) => c.notNull())
    .addColumn('currency', 'varchar(3)', (c) => c.notNull())
    .addColumn('items_total_fen', big, (c) => c.notNull())
    .addColumn('discount_total_fen', big, (c) => c.notNull())
    .addColumn('shipping_fen', big, (c) => c.notNull())
    .addColumn('payable_fen', big, (c) => c.notNull())
    .addColumn('remark', 'varchar(200)')
    .addColumn('payment_no', 'varchar(64)')
    .addColumn('paid_fen', big)
    .addColumn('cancel_reason', 'varchar(32)')
    .addColumn('created_at_ms', big, (c) => c.notNull())
    .addColumn('updated_at_ms', big, (c) => c.notNull())
    .addColumn('expires_at_ms', big, (c) => c.notNull())
    .addColumn('paid_at_ms', big)
    .addColumn('cancelled_at_ms', big)
    .addCheckConstraint(
      'orders_amounts',
      sql`items_total_fen >= 0 and discount_total_fen >= 0 and shipping_fen >= 0 and payable_fen >= 0 and payable_fen = items_total_fen - discount_total_fen + shipping_fen`,
    )
    .execute();
  await db.schema.createIndex('orders_by_buyer').on('orders').columns(['buyer_id', 'order_no']).execute();
  await db.schema
    .createTable('order_lines')
    .addColumn('order_no', 'varchar(32)', (c) => c.notNull())
    .addColumn('line_no', big, (c) => c.notNull())
    .addColumn('activity_id', big, (c) => c.notNull())
    .addColumn('activity_sku_id', big, (c) => c.notNull())
    .addColumn('sku_id', big, (c) => c.notNull())
    .addColumn('merchant_id', big, (c) => c.notNull())
    .addColumn('title', 'varchar(200)', (c) => c.notNull())
    .addColumn('inventory_mode', 'varchar(20)', (c) => c.notNull())
    .addColumn('unit_price_fen', big, (c) => c.notNull())
    .addColumn('quantity', big, (c) => c.notNull())
    .addColumn('subtotal_fen', big, (c) => c.notNull())
    .addColumn('discount_fen', big, (c) => c.notNull())
    .addColumn('shipping_fen', big, (c) => c.notNull())
    .addColumn('payable_fen', big, (c) => c.notNull())
    .addPrimaryKeyConstraint('order_lines_pk', ['order_no', 'line_no'])
    .addCheckConstraint(
      'order_lines_amounts',
      sql`quantity > 0 and subtotal_fen >= 0 and shipping_fen >= 0 and payable_fen = subtotal_fen - discount_fen + shipping_fen and payable_fen >= 0`,
    )
    .execute();
  await db.schema
    .createTable('purchase_counters')
    .addColumn('buyer_id', big, (c) => c.notNull())
    .addColumn('activity_sku_id', big, (c) => c.notNull())
    .addColumn('quantity', big, (c) => c.notNull())
    .addPrimaryKeyConstraint('purchase_counters_pk', ['buyer_id', 'activity_sku_id'])
    .addCheckConstraint('purchase_counters_quantity', sql`quantity >= 0`)
    .execute();
  // Keys are case-sensitive everywhere; MySQL's default collation would fold case.
  const keyType = dialectOf(db) === 'mysql' ? sql`varchar(128) character set ascii collate ascii_bin` : sql`varchar(128)`;
  await db.schema
    .createTable('idempotency_keys')
    .addColumn('buyer_id', big, (c) => c.notNull())
    .addColumn('idem_key', keyType, (c) => c.notNull())
    .addColumn('request_hash', 'varchar(64)', (c) => c.notNull())
    .addColumn('order_no', 'varchar(32)', (c) => c.notNull())
    .addColumn('state', 'varchar(16)', (c) => c.notNull())
    .addColumn('response_status', 'integer')
    .addColumn('response_body', 'text')
    .addColumn('lease_token', 'varchar(36)')
    .addColumn('locked_until_ms', big, (c) => c.notNull())
    .addColumn('created_at_ms', big, (c) => c.notNull())
    .addPrimaryKeyConstraint('idempotency_keys_pk', ['buyer_id', 'idem_key'])
    .execute();
  await db.schema.createIndex('idempotency_keys_by_order').on('idempotency_keys').column('order_no').execute();

  // events and jobs (in every database, written inside the business transaction)
  await withId(db, db.schema.createTable('outbox_events'))
    .addColumn('event_id', 'varchar(36)', (c) => c.notNull().unique())
    .addColumn('event_type', 'varchar(64)', (c) => c.notNull())
    .addColumn('aggregate_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('payload', 'text', (c) => c.notNull())
    .addColumn('created_at_ms', big, (c) => c.notNull())
    .addColumn('due_at_ms', big, (c) => c.notNull())
    .addColumn('locked_until_ms', big, (c) => c.notNull())
    .addColumn('locked_by', 'varchar(64)')
    .addColumn('attempts', big, (c) => c.notNull())
    .addColumn('last_error', 'text')
    .addColumn('dead_at_ms', big)
    .execute();
  await db.schema.createIndex('outbox_events_due').on('outbox_events').columns(['due_at_ms', 'id']).execute();
  await withId(db, db.schema.createTable('jobs'))
    .addColumn('kind', 'varchar(64)', (c) => c.notNull())
    .addColumn('job_key', 'varchar(128)', (c) => c.notNull().unique())
    .addColumn('payload', 'text', (c) => c.notNull())
    .addColumn('created_at_ms', big, (c) => c.notNull())
    .addColumn('due_at_ms', big, (c) => c.notNull())
    .addColumn('locked_until_ms', big, (c) => c.notNull())
    .addColumn('locked_by', 'varchar(64)')
    .addColumn('attempts', big, (c) => c.notNull())
    .addColumn('max_attempts', big, (c) => c.notNull())
    .addColumn('last_error', 'text')
    .addColumn('dead_at_ms', big)
    .execute();
  await db.schema.createIndex('jobs_due').on('jobs').columns(['due_at_ms', 'id']).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const table of [
    'jobs', 'outbox_events', 'idempotency_keys', 'purchase_counters', 'order_lines', 'orders', 'cart_lines',
    'stock_reservations', 'stock', 'leaders', 'buyers', 'activity_skus', 'activities', 'skus', 'products', 'merchants',
  ]) {
    await db.schema.dropTable(table).ifExists().execute();
  }
}
