import type { Migration } from 'kysely';
import * as baseline from './0001_catalog.ts';
import * as merchantChannelAccounts from './0002_merchant_channel_accounts.ts';

/** The catalog module's migrations, in order (history in migrations_catalog). Add a file and a line; never edit a landed one. */
export const catalogMigrations: Record<string, Migration> = {
  '0001_catalog': baseline,
  '0002_merchant_channel_accounts': merchantChannelAccounts,
};
