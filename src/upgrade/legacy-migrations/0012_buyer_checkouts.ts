// FROZEN legacy migration (see src/upgrade/legacy.ts): never edited, run only to bring a legacy database up to 0013.
import { sql, type Kysely } from 'kysely';

/**
 * One row per buyer on the buyer's order shard, counting the orders they placed. Raising it is
 * the first write of an order's transaction, so a buyer's order writes queue behind one another
 * and the per-buyer limits on unpaid orders are checked against what is committed.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('buyer_checkouts')
    .addColumn('buyer_id', 'bigint', (c) => c.primaryKey())
    .addColumn('placed_orders', 'bigint', (c) => c.notNull())
    .addCheckConstraint('buyer_checkouts_placed', sql`placed_orders >= 0`)
    .execute();
  // Every checkout counts the buyer's unpaid orders: by index, however many orders they have had.
  await db.schema.createIndex('orders_by_buyer_status').on('orders').columns(['buyer_id', 'status']).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('orders_by_buyer_status').on('orders').execute();
  await db.schema.dropTable('buyer_checkouts').execute();
}
