import { DEFAULT_MIGRATION_LOCK_TABLE, DEFAULT_MIGRATION_TABLE, type Kysely } from 'kysely';
import { appliedMigrations, hasTable, recordAsApplied, runMigrations, type MigrationHistory } from '../platform/db/migrate.ts';
import * as foundation from './legacy-migrations/0001_foundation.ts';
import * as pricing from './legacy-migrations/0002_pricing.ts';
import * as priceProtection from './legacy-migrations/0003_price_protection.ts';
import * as stockAdjustments from './legacy-migrations/0004_stock_adjustments.ts';
import * as payments from './legacy-migrations/0005_payments.ts';
import * as flashSale from './legacy-migrations/0006_flash_sale.ts';
import * as eventInbox from './legacy-migrations/0007_event_inbox.ts';
import * as consistency from './legacy-migrations/0008_consistency.ts';
import * as inboxPruning from './legacy-migrations/0009_inbox_pruning.ts';
import * as reservationHolds from './legacy-migrations/0010_reservation_holds.ts';
import * as refundRequestHash from './legacy-migrations/0011_refund_request_hash.ts';
import * as buyerCheckouts from './legacy-migrations/0012_buyer_checkouts.ts';
import * as tokenRevocations from './legacy-migrations/0013_token_revocations.ts';

/**
 * Databases made before migrations moved into the modules ran one history, cut by delivery, in
 * Kysely's default table (kysely_migration), on every database. Those migrations are FROZEN here:
 * they are never edited and never gain a file; they run only to bring a legacy database that is
 * behind up to 0013, never on a fresh database. New schema changes go in the modules' own folders.
 */
export const LEGACY_HISTORY: MigrationHistory = {
  name: 'legacy',
  migrations: {
    '0001_foundation': foundation,
    '0002_pricing': pricing,
    '0003_price_protection': priceProtection,
    '0004_stock_adjustments': stockAdjustments,
    '0005_payments': payments,
    '0006_flash_sale': flashSale,
    '0007_event_inbox': eventInbox,
    '0008_consistency': consistency,
    '0009_inbox_pruning': inboxPruning,
    '0010_reservation_holds': reservationHolds,
    '0011_refund_request_hash': refundRequestHash,
    '0012_buyer_checkouts': buyerCheckouts,
    '0013_token_revocations': tokenRevocations,
  },
  table: DEFAULT_MIGRATION_TABLE,
  lockTable: DEFAULT_MIGRATION_LOCK_TABLE,
};

/**
 * Per module history, its first migrations whose tables legacy 0013 had already made, in exactly
 * that shape: on a legacy database they are recorded as applied, not run. A module missing here
 * was born after the legacy migrations and makes its tables with its own migrations. Frozen too.
 */
export const LEGACY_BASELINE: Readonly<Record<string, readonly string[]>> = {
  catalog: ['0001_catalog'],
  buyers: ['0001_buyers'],
  leaders: ['0001_leaders'],
  inventory: ['0001_inventory'],
  cart: ['0001_cart'],
  orders: ['0001_orders'],
  promotions: ['0001_promotions'],
  coupons: ['0001_coupons'],
  points: ['0001_points'],
  payments_shard: ['0001_payment_orders'],
  payments_main: ['0001_reconciliation'],
  events: ['0001_events'],
  jobs: ['0001_jobs'],
  consistency: ['0001_consistency'],
  access: ['0001_access'],
};

/**
 * Hands a legacy database over to the modules' histories: brings it to legacy 0013 if it is
 * behind, then records each given module's baseline as applied. Nothing is dropped, so a legacy
 * order shard keeps the main-side tables every legacy database got (empty there, and read by
 * nothing), and a legacy main database keeps its order tables. A database without the legacy
 * history (fresh, or made by the modules' migrations) is left alone. Returns what it did.
 */
export async function adoptLegacyDatabase(db: Kysely<any>, histories: readonly MigrationHistory[]): Promise<string[]> {
  if (!(await hasTable(db, LEGACY_HISTORY.table))) return [];
  const done = (await runMigrations(db, LEGACY_HISTORY)).map((name) => `${LEGACY_HISTORY.name}/${name}`);
  for (const history of histories) {
    const baseline = LEGACY_BASELINE[history.name];
    if (!baseline || (await appliedMigrations(db, history)).length > 0) continue;
    const recorded = await recordAsApplied(db, history, baseline);
    done.push(...recorded.map((name) => `${history.name}/${name} (recorded: legacy 0013 made its tables)`));
  }
  return done;
}
