import { Migrator, type Migration, type MigrationProvider } from 'kysely';
import type { Db } from './database.ts';
import * as foundation from './migrations/0001_foundation.ts';
import * as pricing from './migrations/0002_pricing.ts';
import * as priceProtection from './migrations/0003_price_protection.ts';
import * as stockAdjustments from './migrations/0004_stock_adjustments.ts';

/** Versioned migrations, in order. Add a file and a line; never edit a landed one. */
const MIGRATIONS: Record<string, Migration> = {
  '0001_foundation': foundation,
  '0002_pricing': pricing,
  '0003_price_protection': priceProtection,
  '0004_stock_adjustments': stockAdjustments,
};

const provider: MigrationProvider = { getMigrations: async () => MIGRATIONS };

export async function migrateToLatest(db: Db): Promise<string[]> {
  const migrator = new Migrator({ db, provider });
  const { error, results } = await migrator.migrateToLatest();
  if (error) throw error instanceof Error ? error : new Error(String(error));
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}
