// FROZEN legacy migration (see src/upgrade/legacy.ts): never edited, run only to bring a legacy database up to 0013.
import { sql, type Kysely } from 'kysely';
import { withId } from './0001_foundation.ts';

const big = 'bigint' as const;

/** Promotions, shipping rules, coupons and points; the discounts each order line received. */
export async function up(db: Kysely<any>): Promise<void> {
  // promotions (rules and scopes are JSON validated on write; few rows, read whole)
  await withId(db, db.schema.createTable('promotions'))
    .addColumn('name', 'varchar(200)', (c) => c.notNull())
    .addColumn('merchant_id', big) // null: platform-wide
    .addColumn('scope', 'text', (c) => c.notNull())
    .addColumn('rule', 'text', (c) => c.notNull())
    .addColumn('priority', big, (c) => c.notNull())
    .addColumn('stacking', 'varchar(16)', (c) => c.notNull())
    .addColumn('starts_at_ms', big, (c) => c.notNull())
    .addColumn('ends_at_ms', big, (c) => c.notNull())
    .addColumn('enabled', 'integer', (c) => c.notNull())
    .addColumn('created_at_ms', big, (c) => c.notNull())
    .addColumn('updated_at_ms', big, (c) => c.notNull())
    .execute();
  await db.schema.createIndex('promotions_by_window').on('promotions').columns(['ends_at_ms', 'starts_at_ms']).execute();
  await withId(db, db.schema.createTable('shipping_rules'))
    .addColumn('merchant_id', big, (c) => c.notNull())
    .addColumn('fulfilment', 'varchar(16)', (c) => c.notNull())
    .addColumn('regions', 'text') // JSON list; null: the merchant's default
    .addColumn('charge', 'text', (c) => c.notNull())
    .addColumn('free_above_fen', big)
    .addColumn('created_at_ms', big, (c) => c.notNull())
    .execute();
  await db.schema.createIndex('shipping_rules_by_merchant').on('shipping_rules').column('merchant_id').execute();

  // coupons
  await withId(db, db.schema.createTable('coupon_templates'))
    .addColumn('name', 'varchar(200)', (c) => c.notNull())
    .addColumn('issuer_merchant_id', big) // null: the platform's
    .addColumn('scope', 'text', (c) => c.notNull())
    .addColumn('rule', 'text', (c) => c.notNull())
    .addColumn('valid_from_ms', big, (c) => c.notNull())
    .addColumn('valid_until_ms', big, (c) => c.notNull())
    .addColumn('per_buyer_limit', big, (c) => c.notNull())
    .addColumn('total_limit', big) // null: unlimited
    .addColumn('issued', big, (c) => c.notNull())
    .addColumn('created_at_ms', big, (c) => c.notNull())
    .addCheckConstraint('coupon_templates_issued', sql`issued >= 0 and (total_limit is null or issued <= total_limit) and per_buyer_limit > 0`)
    .execute();
  await withId(db, db.schema.createTable('coupons'))
    .addColumn('template_id', big, (c) => c.notNull())
    .addColumn('buyer_id', big, (c) => c.notNull())
    .addColumn('state', 'varchar(16)', (c) => c.notNull())
    .addColumn('order_no', 'varchar(32)')
    .addColumn('issued_at_ms', big, (c) => c.notNull())
    .addColumn('updated_at_ms', big, (c) => c.notNull())
    .addCheckConstraint('coupons_lock', sql`(state = 'available' and order_no is null) or (state in ('locked', 'used') and order_no is not null)`)
    .execute();
  await db.schema.createIndex('coupons_by_buyer').on('coupons').columns(['buyer_id', 'state']).execute();
  await db.schema.createIndex('coupons_by_order').on('coupons').column('order_no').execute();
  await db.schema
    .createTable('coupon_issuance')
    .addColumn('template_id', big, (c) => c.notNull())
    .addColumn('buyer_id', big, (c) => c.notNull())
    .addColumn('issued', big, (c) => c.notNull())
    .addPrimaryKeyConstraint('coupon_issuance_pk', ['template_id', 'buyer_id'])
    .execute();

  // points (积分): frozen points are the ones locked by unpaid orders
  await db.schema
    .createTable('points_accounts')
    .addColumn('buyer_id', big, (c) => c.primaryKey())
    .addColumn('balance', big, (c) => c.notNull())
    .addColumn('frozen', big, (c) => c.notNull())
    .addColumn('updated_at_ms', big, (c) => c.notNull())
    .addCheckConstraint('points_never_negative', sql`balance >= 0 and frozen >= 0 and frozen <= balance`)
    .execute();
  await withId(db, db.schema.createTable('points_journal'))
    .addColumn('buyer_id', big, (c) => c.notNull())
    .addColumn('movement', 'varchar(16)', (c) => c.notNull())
    .addColumn('points', big, (c) => c.notNull())
    .addColumn('order_no', 'varchar(32)')
    /** Makes each movement happen once: (order, movement) for order-bound ones, a caller's id for grants. */
    .addColumn('dedupe_key', 'varchar(80)', (c) => c.notNull().unique())
    .addColumn('balance_after', big, (c) => c.notNull())
    .addColumn('frozen_after', big, (c) => c.notNull())
    .addColumn('note', 'varchar(200)')
    .addColumn('created_at_ms', big, (c) => c.notNull())
    .execute();
  await db.schema.createIndex('points_journal_by_buyer').on('points_journal').columns(['buyer_id', 'id']).execute();

  // stock-linked prices: the activity price for the first N units only
  await db.schema.alterTable('activity_skus').addColumn('activity_price_units', big).execute();
  await db.schema
    .alterTable('stock')
    .addColumn('activity_price_taken', big, (c) => c.notNull().defaultTo(0).check(sql`activity_price_taken >= 0`))
    .execute();
  await db.schema.alterTable('stock_reservations').addColumn('activity_price_units', big, (c) => c.notNull().defaultTo(0)).execute();

  // orders: the full price breakdown per line and what the order holds
  await db.schema.alterTable('order_lines').addColumn('discounts', 'text').execute();
  await db.schema.alterTable('order_lines').addColumn('price_segments', 'text').execute();
  await db.schema.alterTable('orders').addColumn('coupon_ids', 'text').execute();
  await db.schema.alterTable('orders').addColumn('points_used', big, (c) => c.notNull().defaultTo(0)).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('orders').dropColumn('points_used').execute();
  await db.schema.alterTable('orders').dropColumn('coupon_ids').execute();
  await db.schema.alterTable('order_lines').dropColumn('price_segments').execute();
  await db.schema.alterTable('order_lines').dropColumn('discounts').execute();
  await db.schema.alterTable('stock_reservations').dropColumn('activity_price_units').execute();
  await db.schema.alterTable('stock').dropColumn('activity_price_taken').execute();
  await db.schema.alterTable('activity_skus').dropColumn('activity_price_units').execute();
  for (const table of ['points_journal', 'points_accounts', 'coupon_issuance', 'coupons', 'coupon_templates', 'shipping_rules', 'promotions']) {
    await db.schema.dropTable(table).ifExists().execute();
  }
}
