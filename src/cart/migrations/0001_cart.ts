import { sql, type Kysely } from 'kysely';

const big = 'bigint' as const;

/** The buyers' cart lines, as legacy migration 0001 made them. */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('cart_lines')
    .addColumn('buyer_id', big, (column) => column.notNull())
    .addColumn('activity_sku_id', big, (column) => column.notNull())
    .addColumn('quantity', big, (column) => column.notNull())
    .addColumn('selected', 'integer', (column) => column.notNull())
    .addColumn('hold_expires_at_ms', big)
    .addColumn('added_at_ms', big, (column) => column.notNull())
    .addColumn('updated_at_ms', big, (column) => column.notNull())
    .addPrimaryKeyConstraint('cart_lines_pk', ['buyer_id', 'activity_sku_id'])
    .addCheckConstraint('cart_lines_quantity', sql`quantity > 0`)
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('cart_lines').ifExists().execute();
}
