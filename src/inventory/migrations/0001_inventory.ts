import { sql, type Kysely } from 'kysely';
import { withId } from '../../platform/db/ddl.ts';

const big = 'bigint' as const;

/**
 * The stock ledger, the reservations against it and the admins' adjustments, as legacy
 * migrations 0001–0013 left them (a column a later legacy migration added comes last).
 * The ledger holds available + reserved + sold = total, in code and here.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('stock')
    .addColumn('activity_sku_id', big, (column) => column.primaryKey())
    .addColumn('total', big, (column) => column.notNull())
    .addColumn('available', big, (column) => column.notNull())
    .addColumn('reserved', big, (column) => column.notNull())
    .addColumn('sold', big, (column) => column.notNull())
    .addColumn('updated_at_ms', big, (column) => column.notNull())
    // Units sold at the stock-linked activity price so far.
    .addColumn('activity_price_taken', big, (column) => column.notNull().defaultTo(0).check(sql`activity_price_taken >= 0`))
    // Which activity's Redis keys gate the available units (秒杀); null: the database serves them.
    .addColumn('flash_sale_activity_id', big)
    .addCheckConstraint(
      'stock_ledger_balances',
      sql`available >= 0 and reserved >= 0 and sold >= 0 and available + reserved + sold = total`,
    )
    .execute();
  await db.schema
    .createTable('stock_reservations')
    .addColumn('order_no', 'varchar(32)', (column) => column.notNull())
    .addColumn('activity_sku_id', big, (column) => column.notNull())
    .addColumn('quantity', big, (column) => column.notNull())
    .addColumn('state', 'varchar(16)', (column) => column.notNull())
    .addColumn('created_at_ms', big, (column) => column.notNull())
    .addColumn('updated_at_ms', big, (column) => column.notNull())
    .addColumn('activity_price_units', big, (column) => column.notNull().defaultTo(0))
    // The buyer, so the purchase limits can be rebuilt in Redis from the database.
    .addColumn('buyer_id', big)
    // How many units came from the buyer's cart hold, and which hold: a failed checkout gives them back to it.
    .addColumn('hold_key', 'varchar(32)')
    .addColumn('from_hold', big, (column) => column.notNull().defaultTo(0))
    .addPrimaryKeyConstraint('stock_reservations_pk', ['order_no', 'activity_sku_id'])
    .addCheckConstraint('stock_reservations_quantity', sql`quantity > 0`)
    .execute();
  await db.schema.createIndex('stock_reservations_by_state').on('stock_reservations').columns(['state', 'created_at_ms']).execute();
  // The flash-sale loader and reconciler read a hot SKU's open reservations by state.
  await db.schema.createIndex('stock_reservations_by_sku_state').on('stock_reservations').columns(['activity_sku_id', 'state']).execute();
  // Every change an admin makes to a SKU's stock, with its reason: the ledger is never overwritten.
  await withId(db, db.schema.createTable('stock_adjustments'))
    .addColumn('activity_sku_id', big, (column) => column.notNull())
    .addColumn('delta', big, (column) => column.notNull())
    .addColumn('reason', 'varchar(200)', (column) => column.notNull())
    .addColumn('actor', 'varchar(64)', (column) => column.notNull())
    .addColumn('request_id', 'varchar(64)', (column) => column.notNull().unique())
    .addColumn('total_after', big, (column) => column.notNull())
    .addColumn('available_after', big, (column) => column.notNull())
    .addColumn('created_at_ms', big, (column) => column.notNull())
    .execute();
  await db.schema.createIndex('stock_adjustments_by_sku').on('stock_adjustments').columns(['activity_sku_id', 'id']).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const table of ['stock_adjustments', 'stock_reservations', 'stock']) await db.schema.dropTable(table).ifExists().execute();
}
