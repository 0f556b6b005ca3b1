// FROZEN legacy migration (see src/upgrade/legacy.ts): never edited, run only to bring a legacy database up to 0013.
import { type Kysely } from 'kysely';

const big = 'bigint' as const;

/**
 * 秒杀 served from Redis: an activity can be marked hot; a stock row says which activity's Redis
 * keys gate its available units (null: the database serves them); a reservation remembers its
 * buyer, so the purchase limits can be rebuilt in Redis from the database after Redis loses them.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('activities').addColumn('hot', 'integer', (c) => c.notNull().defaultTo(0)).execute();
  await db.schema.alterTable('stock').addColumn('flash_sale_activity_id', big).execute();
  await db.schema.alterTable('stock_reservations').addColumn('buyer_id', big).execute();
  // The loader and the reconciler read a hot SKU's open reservations by state.
  await db.schema.createIndex('stock_reservations_by_sku_state').on('stock_reservations').columns(['activity_sku_id', 'state']).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('stock_reservations_by_sku_state').on('stock_reservations').execute();
  await db.schema.alterTable('stock_reservations').dropColumn('buyer_id').execute();
  await db.schema.alterTable('stock').dropColumn('flash_sale_activity_id').execute();
  await db.schema.alterTable('activities').dropColumn('hot').execute();
}
