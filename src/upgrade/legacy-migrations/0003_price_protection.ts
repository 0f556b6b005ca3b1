// FROZEN legacy migration (see src/upgrade/legacy.ts): never edited, run only to bring a legacy database up to 0013.
import { type Kysely } from 'kysely';

const big = 'bigint' as const;

/** 价保 claims: one per order line at most (on the order shards). */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('price_protection_claims')
    .addColumn('order_no', 'varchar(32)', (c) => c.notNull())
    .addColumn('line_no', big, (c) => c.notNull())
    .addColumn('buyer_id', big, (c) => c.notNull())
    .addColumn('activity_sku_id', big, (c) => c.notNull())
    .addColumn('paid_unit_price_fen', big, (c) => c.notNull())
    .addColumn('current_unit_price_fen', big, (c) => c.notNull())
    .addColumn('quantity', big, (c) => c.notNull())
    .addColumn('amount_fen', big, (c) => c.notNull())
    .addColumn('claimed_at_ms', big, (c) => c.notNull())
    .addPrimaryKeyConstraint('price_protection_claims_pk', ['order_no', 'line_no'])
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('price_protection_claims').ifExists().execute();
}
