import { sql, type Kysely } from 'kysely';
import { withId } from '../../platform/db/ddl.ts';

const big = 'bigint' as const;

/**
 * The catalog's tables as legacy migrations 0001–0013 left them (columns in the same order, a
 * column a later legacy migration added comes last), so a fresh database and an upgraded one agree.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await withId(db, db.schema.createTable('merchants'))
    .addColumn('name', 'varchar(200)', (column) => column.notNull())
    .addColumn('created_at_ms', big, (column) => column.notNull())
    .execute();
  await withId(db, db.schema.createTable('products'))
    .addColumn('merchant_id', big, (column) => column.notNull())
    .addColumn('title', 'varchar(200)', (column) => column.notNull())
    .addColumn('category', 'varchar(100)')
    .addColumn('created_at_ms', big, (column) => column.notNull())
    .addColumn('updated_at_ms', big, (column) => column.notNull())
    .execute();
  await db.schema.createIndex('products_by_merchant').on('products').column('merchant_id').execute();
  await withId(db, db.schema.createTable('skus'))
    .addColumn('product_id', big, (column) => column.notNull())
    .addColumn('merchant_id', big, (column) => column.notNull())
    .addColumn('title', 'varchar(200)', (column) => column.notNull())
    .addColumn('list_price_fen', big, (column) => column.notNull())
    .addColumn('weight_g', big, (column) => column.notNull())
    .addColumn('created_at_ms', big, (column) => column.notNull())
    .addColumn('updated_at_ms', big, (column) => column.notNull())
    .addCheckConstraint('skus_amounts', sql`list_price_fen >= 0 and weight_g >= 0`)
    .execute();
  await db.schema.createIndex('skus_by_product').on('skus').column('product_id').execute();
  await withId(db, db.schema.createTable('activities'))
    .addColumn('title', 'varchar(200)', (column) => column.notNull())
    .addColumn('starts_at_ms', big, (column) => column.notNull())
    .addColumn('ends_at_ms', big, (column) => column.notNull())
    .addColumn('order_cutoff_at_ms', big, (column) => column.notNull())
    .addColumn('pickup_date', 'varchar(10)', (column) => column.notNull())
    .addColumn('inventory_mode', 'varchar(20)', (column) => column.notNull())
    .addColumn('created_at_ms', big, (column) => column.notNull())
    .addColumn('updated_at_ms', big, (column) => column.notNull())
    // 秒杀 served from Redis: an activity can be marked hot.
    .addColumn('hot', 'integer', (column) => column.notNull().defaultTo(0))
    .addCheckConstraint('activities_window', sql`starts_at_ms < ends_at_ms and order_cutoff_at_ms <= ends_at_ms`)
    .execute();
  await withId(db, db.schema.createTable('activity_skus'))
    .addColumn('activity_id', big, (column) => column.notNull())
    .addColumn('sku_id', big, (column) => column.notNull())
    .addColumn('price_fen', big, (column) => column.notNull())
    .addColumn('purchase_limit', big)
    .addColumn('created_at_ms', big, (column) => column.notNull())
    .addColumn('updated_at_ms', big, (column) => column.notNull())
    // Stock-linked prices: the activity price for the first N units only (null: every unit).
    .addColumn('activity_price_units', big)
    .addUniqueConstraint('activity_skus_once', ['activity_id', 'sku_id'])
    .addCheckConstraint('activity_skus_amounts', sql`price_fen >= 0 and (purchase_limit is null or purchase_limit > 0)`)
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const table of ['activity_skus', 'activities', 'skus', 'products', 'merchants']) await db.schema.dropTable(table).ifExists().execute();
}
