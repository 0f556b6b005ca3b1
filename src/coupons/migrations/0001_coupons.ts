import { sql, type Kysely } from 'kysely';
import { withId } from '../../platform/db/ddl.ts';

const big = 'bigint' as const;

/** Coupon templates, the coupons issued from them and the per-buyer issue counts, as legacy migrations 0002 and 0008 left them. */
export async function up(db: Kysely<any>): Promise<void> {
  await withId(db, db.schema.createTable('coupon_templates'))
    .addColumn('name', 'varchar(200)', (column) => column.notNull())
    .addColumn('issuer_merchant_id', big) // null: the platform's
    .addColumn('scope', 'text', (column) => column.notNull())
    .addColumn('rule', 'text', (column) => column.notNull())
    .addColumn('valid_from_ms', big, (column) => column.notNull())
    .addColumn('valid_until_ms', big, (column) => column.notNull())
    .addColumn('per_buyer_limit', big, (column) => column.notNull())
    .addColumn('total_limit', big) // null: unlimited
    .addColumn('issued', big, (column) => column.notNull())
    .addColumn('created_at_ms', big, (column) => column.notNull())
    .addCheckConstraint('coupon_templates_issued', sql`issued >= 0 and (total_limit is null or issued <= total_limit) and per_buyer_limit > 0`)
    .execute();
  await withId(db, db.schema.createTable('coupons'))
    .addColumn('template_id', big, (column) => column.notNull())
    .addColumn('buyer_id', big, (column) => column.notNull())
    .addColumn('state', 'varchar(16)', (column) => column.notNull())
    .addColumn('order_no', 'varchar(32)')
    .addColumn('issued_at_ms', big, (column) => column.notNull())
    .addColumn('updated_at_ms', big, (column) => column.notNull())
    .addCheckConstraint('coupons_lock', sql`(state = 'available' and order_no is null) or (state in ('locked', 'used') and order_no is not null)`)
    .execute();
  await db.schema.createIndex('coupons_by_buyer').on('coupons').columns(['buyer_id', 'state']).execute();
  await db.schema.createIndex('coupons_by_order').on('coupons').column('order_no').execute();
  // The consistency checks read coupons by state.
  await db.schema.createIndex('coupons_by_state').on('coupons').columns(['state', 'updated_at_ms']).execute();
  await db.schema
    .createTable('coupon_issuance')
    .addColumn('template_id', big, (column) => column.notNull())
    .addColumn('buyer_id', big, (column) => column.notNull())
    .addColumn('issued', big, (column) => column.notNull())
    .addPrimaryKeyConstraint('coupon_issuance_pk', ['template_id', 'buyer_id'])
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const table of ['coupon_issuance', 'coupons', 'coupon_templates']) await db.schema.dropTable(table).ifExists().execute();
}
