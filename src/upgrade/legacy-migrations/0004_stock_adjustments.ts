// FROZEN legacy migration (see src/upgrade/legacy.ts): never edited, run only to bring a legacy database up to 0013.
import { type Kysely } from 'kysely';
import { withId } from './0001_foundation.ts';

const big = 'bigint' as const;

/** Every change an admin makes to a SKU's stock, with its reason: the ledger is never overwritten. */
export async function up(db: Kysely<any>): Promise<void> {
  await withId(db, db.schema.createTable('stock_adjustments'))
    .addColumn('activity_sku_id', big, (c) => c.notNull())
    .addColumn('delta', big, (c) => c.notNull())
    .addColumn('reason', 'varchar(200)', (c) => c.notNull())
    .addColumn('actor', 'varchar(64)', (c) => c.notNull())
    .addColumn('request_id', 'varchar(64)', (c) => c.notNull().unique())
    .addColumn('total_after', big, (c) => c.notNull())
    .addColumn('available_after', big, (c) => c.notNull())
    .addColumn('created_at_ms', big, (c) => c.notNull())
    .execute();
  await db.schema.createIndex('stock_adjustments_by_sku').on('stock_adjustments').columns(['activity_sku_id', 'id']).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('stock_adjustments').ifExists().execute();
}
