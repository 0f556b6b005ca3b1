// FROZEN legacy migration (see src/upgrade/legacy.ts): never edited, run only to bring a legacy database up to 0013.
import { type Kysely } from 'kysely';

/**
 * A refund asked for with an Idempotency-Key remembers a hash of what was asked, so the same
 * key sent with another request is refused (409) instead of answered with the first refund.
 * Refunds written before this column have none and are matched by key alone.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('payment_refunds').addColumn('request_hash', 'varchar(64)').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('payment_refunds').dropColumn('request_hash').execute();
}
