import { sql, type Kysely } from 'kysely';

const big = 'bigint' as const;

/**
 * Merchants' identities at the payment channels (issue 12, item 5): which merchant is the
 * platform's own (自营, paid into the platform's merchant number), and each marketplace merchant's
 * sub-merchant id per channel (WeChat sub_mchid, Alipay smid, the custody bank's merchant number).
 * The lengths are written out, not imported: a landed migration never changes with the code.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable('merchants')
    .addColumn('self_operated', 'integer', (column) => column.notNull().defaultTo(0).check(sql`self_operated in (0, 1)`))
    .execute();
  await db.schema
    .createTable('merchant_channel_accounts')
    .addColumn('merchant_id', big, (column) => column.notNull().references('merchants.id'))
    .addColumn('channel', 'varchar(20)', (column) => column.notNull())
    // The longest of the channels' ids: WeChat's sub_mchid is string[1,32], CCB's Mkt_Mrch_Id at most 30.
    .addColumn('sub_merchant_id', 'varchar(32)', (column) => column.notNull())
    .addColumn('created_at_ms', big, (column) => column.notNull())
    .addColumn('updated_at_ms', big, (column) => column.notNull())
    .addPrimaryKeyConstraint('merchant_channel_accounts_key', ['merchant_id', 'channel'])
    .addCheckConstraint('merchant_channel_accounts_channel', sql`channel in ('alipay', 'wechat', 'unionpay', 'ccb')`)
    .addCheckConstraint('merchant_channel_accounts_id', sql`length(sub_merchant_id) > 0`)
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('merchant_channel_accounts').ifExists().execute();
  await db.schema.alterTable('merchants').dropColumn('self_operated').execute();
}
