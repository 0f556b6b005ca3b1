import { type Kysely } from 'kysely';

/**
 * A shipping rule's pickup-or-delivery choice is the handover (how the goods reach the buyer);
 * "fulfillment" names the future module that hands them over. A rename in place keeps every
 * rule; SQLite ≥ 3.25, PostgreSQL and MariaDB ≥ 10.5 all have RENAME COLUMN.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('shipping_rules').renameColumn('fulfilment', 'handover').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('shipping_rules').renameColumn('handover', 'fulfilment').execute();
}
