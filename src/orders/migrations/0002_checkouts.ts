import { sql, type Kysely } from 'kysely';
import { dialectOf } from '../../platform/db/database.ts';

const big = 'bigint' as const;

/**
 * 拆单: a checkout is one buyer's submission, paid once; it holds one order per merchant, each the
 * merchant's own sale. The checkout row is written with its orders and never changes: what it
 * is (unpaid, paid, cancelled) is what its orders are. Holds (stock, coupons, points) are made
 * under the checkout's number, which is also what the Idempotency-Key remembers.
 *
 * Each line records who funds its discount: the platform (平台补贴, paid to the merchant at
 * settlement) or the merchant (商家让利). Orders placed before this migration were one per
 * checkout: each becomes its own checkout under its own number, its merchant the lowest of its
 * lines' (such an order may still mix merchants), and its discounts counted as the platform's,
 * since what funded them was not recorded.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('checkouts')
    .addColumn('checkout_no', 'varchar(32)', (column) => column.primaryKey())
    .addColumn('buyer_id', big, (column) => column.notNull())
    .addColumn('leader_id', big, (column) => column.notNull())
    .addColumn('currency', 'varchar(3)', (column) => column.notNull())
    .addColumn('order_count', big, (column) => column.notNull())
    .addColumn('items_total_fen', big, (column) => column.notNull())
    .addColumn('discount_total_fen', big, (column) => column.notNull())
    .addColumn('shipping_fen', big, (column) => column.notNull())
    .addColumn('payable_fen', big, (column) => column.notNull())
    .addColumn('coupon_ids', 'text')
    .addColumn('points_used', big, (column) => column.notNull())
    .addColumn('created_at_ms', big, (column) => column.notNull())
    .addColumn('expires_at_ms', big, (column) => column.notNull())
    .addCheckConstraint(
      'checkouts_amounts',
      sql`order_count >= 1 and items_total_fen >= 0 and discount_total_fen >= 0 and shipping_fen >= 0 and points_used >= 0 and payable_fen >= 0 and payable_fen = items_total_fen - discount_total_fen + shipping_fen`,
    )
    .execute();
  await db.schema.createIndex('checkouts_by_buyer').on('checkouts').columns(['buyer_id', 'checkout_no']).execute();

  await db.schema.alterTable('orders').addColumn('checkout_no', 'varchar(32)', (column) => column.notNull().defaultTo('')).execute();
  await db.schema.alterTable('orders').addColumn('merchant_id', big, (column) => column.notNull().defaultTo(0)).execute();
  await db.updateTable('orders').set({ checkout_no: sql.ref('order_no') }).execute();
  await db
    .updateTable('orders')
    .set({ merchant_id: sql`(select min(order_lines.merchant_id) from order_lines where order_lines.order_no = orders.order_no)` })
    .where(sql<boolean>`exists (select 1 from order_lines where order_lines.order_no = orders.order_no)`)
    .execute();
  await db
    .insertInto('checkouts')
    .columns(['checkout_no', 'buyer_id', 'leader_id', 'currency', 'order_count', 'items_total_fen', 'discount_total_fen', 'shipping_fen', 'payable_fen', 'coupon_ids', 'points_used', 'created_at_ms', 'expires_at_ms'])
    .expression(
      db
        .selectFrom('orders')
        .select([
          'order_no',
          'buyer_id',
          'leader_id',
          'currency',
          sql<number>`1`.as('order_count'),
          'items_total_fen',
          'discount_total_fen',
          'shipping_fen',
          'payable_fen',
          'coupon_ids',
          'points_used',
          'created_at_ms',
          'expires_at_ms',
        ]),
    )
    .execute();
  // A checkout's orders are read together (its view, its cancel, its payment).
  await db.schema.createIndex('orders_by_checkout').on('orders').columns(['checkout_no', 'merchant_id']).execute();

  await db.schema.alterTable('order_lines').addColumn('platform_funded_fen', big, (column) => column.notNull().defaultTo(0)).execute();
  await db.updateTable('order_lines').set({ platform_funded_fen: sql.ref('discount_fen') }).execute();
  const funding = sql`platform_funded_fen >= 0 and merchant_funded_fen >= 0 and platform_funded_fen + merchant_funded_fen = discount_fen`;
  if (dialectOf(db) === 'sqlite') {
    // SQLite adds no table constraint to a table that exists; a column's CHECK may name the other
    // columns, and is tested against the rows already there. (orders_checkout has no such column
    // to ride on: on SQLite the code alone keeps it.)
    await db.schema.alterTable('order_lines').addColumn('merchant_funded_fen', big, (column) => column.notNull().defaultTo(0).check(funding)).execute();
  } else {
    await db.schema.alterTable('order_lines').addColumn('merchant_funded_fen', big, (column) => column.notNull().defaultTo(0)).execute();
    await db.schema.alterTable('order_lines').addCheckConstraint('order_lines_funding', funding).execute();
    await db.schema.alterTable('orders').addCheckConstraint('orders_checkout', sql`checkout_no <> '' and merchant_id > 0`).execute();
  }
  // What a key claims is a checkout now.
  await db.schema.alterTable('idempotency_keys').renameColumn('order_no', 'checkout_no').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('idempotency_keys').renameColumn('checkout_no', 'order_no').execute();
  if (dialectOf(db) !== 'sqlite') {
    await db.schema.alterTable('orders').dropConstraint('orders_checkout').execute();
    await db.schema.alterTable('order_lines').dropConstraint('order_lines_funding').execute();
  }
  await db.schema.alterTable('order_lines').dropColumn('merchant_funded_fen').execute();
  await db.schema.alterTable('order_lines').dropColumn('platform_funded_fen').execute();
  // DROP INDEX … ON is MySQL's alone (its indexes are per table); SQLite and PostgreSQL refuse it.
  const dropIndex = db.schema.dropIndex('orders_by_checkout');
  await (dialectOf(db) === 'mysql' ? dropIndex.on('orders') : dropIndex).execute();
  await db.schema.alterTable('orders').dropColumn('merchant_id').execute();
  await db.schema.alterTable('orders').dropColumn('checkout_no').execute();
  await db.schema.dropTable('checkouts').execute();
}
