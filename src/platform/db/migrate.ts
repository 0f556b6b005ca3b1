import { Migrator, type Migration, type MigrationProvider } from 'kysely';
import type { AnyDb } from './database.ts';
import * as foundation from './migrations/0001_foundation.ts';
import * as pricing from './migrations/0002_pricing.ts';
import * as priceProtection from './migrations/0003_price_protection.ts';
import * as stockAdjustments from './migrations/0004_stock_adjustments.ts';
import * as payments from './migrations/0005_payments.ts';
import * as flashSale from './migrations/0006_flash_sale.ts';
import * as eventInbox from './migrations/0007_event_inbox.ts';
import * as consistency from './migrations/0008_consistency.ts';
import * as inboxPruning from './migrations/0009_inbox_pruning.ts';
import * as reservationHolds from './migrations/0010_reservation_holds.ts';
import * as refundRequestHash from './migrations/0011_refund_request_hash.ts';
import * as buyerCheckouts from './migrations/0012_buyer_checkouts.ts';
import * as tokenRevocations from './migrations/0013_token_revocations.ts';

/** Versioned migrations, in order. Add a file and a line; never edit a landed one. */
const MIGRATIONS: Record<string, Migration> = {
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
};

const provider: MigrationProvider = { getMigrations: async () => MIGRATIONS };

export async function migrateToLatest(db: AnyDb): Promise<string[]> {
  const migrator = new Migrator({ db, provider });
  const { error, results } = await migrator.migrateToLatest();
  if (error) throw error instanceof Error ? error : new Error(String(error));
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}
