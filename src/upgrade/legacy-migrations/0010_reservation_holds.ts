// FROZEN legacy migration (see src/upgrade/legacy.ts): never edited, run only to bring a legacy database up to 0013.
import { type Kysely } from 'kysely';

/**
 * An order's reservation remembers how many of its units came from the buyer's cart hold, and
 * which hold: a checkout that fails after taking them gives them back to the hold, not to
 * every buyer.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('stock_reservations').addColumn('hold_key', 'varchar(32)').execute();
  await db.schema.alterTable('stock_reservations').addColumn('from_hold', 'bigint', (c) => c.notNull().defaultTo(0)).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('stock_reservations').dropColumn('from_hold').execute();
  await db.schema.alterTable('stock_reservations').dropColumn('hold_key').execute();
}
