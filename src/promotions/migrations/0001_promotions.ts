import { type Kysely } from 'kysely';
import { withId } from '../../platform/db/ddl.ts';

const big = 'bigint' as const;

/**
 * Promotions and shipping rules, as legacy migration 0002 made them. Rules and scopes are JSON
 * validated on write; few rows, read whole.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await withId(db, db.schema.createTable('promotions'))
    .addColumn('name', 'varchar(200)', (column) => column.notNull())
    .addColumn('merchant_id', big) // null: platform-wide
    .addColumn('scope', 'text', (column) => column.notNull())
    .addColumn('rule', 'text', (column) => column.notNull())
    .addColumn('priority', big, (column) => column.notNull())
    .addColumn('stacking', 'varchar(16)', (column) => column.notNull())
    .addColumn('starts_at_ms', big, (column) => column.notNull())
    .addColumn('ends_at_ms', big, (column) => column.notNull())
    .addColumn('enabled', 'integer', (column) => column.notNull())
    .addColumn('created_at_ms', big, (column) => column.notNull())
    .addColumn('updated_at_ms', big, (column) => column.notNull())
    .execute();
  await db.schema.createIndex('promotions_by_window').on('promotions').columns(['ends_at_ms', 'starts_at_ms']).execute();
  await withId(db, db.schema.createTable('shipping_rules'))
    .addColumn('merchant_id', big, (column) => column.notNull())
    .addColumn('fulfilment', 'varchar(16)', (column) => column.notNull())
    .addColumn('regions', 'text') // JSON list; null: the merchant's default
    .addColumn('charge', 'text', (column) => column.notNull())
    .addColumn('free_above_fen', big)
    .addColumn('created_at_ms', big, (column) => column.notNull())
    .execute();
  await db.schema.createIndex('shipping_rules_by_merchant').on('shipping_rules').column('merchant_id').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const table of ['shipping_rules', 'promotions']) await db.schema.dropTable(table).ifExists().execute();
}
