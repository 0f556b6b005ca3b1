import type { Kysely } from 'kysely';
import { accessMigrations } from './access/migrations/index.ts';
import { buyersMigrations } from './buyers/migrations/index.ts';
import { cartMigrations } from './cart/migrations/index.ts';
import { catalogMigrations } from './catalog/migrations/index.ts';
import { consistencyMigrations } from './consistency/migrations/index.ts';
import { couponsMigrations } from './coupons/migrations/index.ts';
import { eventsMigrations } from './events/migrations/index.ts';
import { inventoryMigrations } from './inventory/migrations/index.ts';
import { jobsMigrations } from './jobs/migrations/index.ts';
import { leadersMigrations } from './leaders/migrations/index.ts';
import { ordersMigrations } from './orders/migrations/index.ts';
import { paymentsMainMigrations, paymentsShardMigrations } from './payments/migrations/index.ts';
import { pointsMigrations } from './points/migrations/index.ts';
import { promotionsMigrations } from './promotions/migrations/index.ts';
import { moduleHistory, runMigrations, type MigrationHistory } from './platform/db/migrate.ts';
import { adoptLegacyDatabase } from './upgrade/legacy.ts';

/** Events and jobs are written inside the business transaction beside them: every database has them. */
const EVERY_DATABASE: readonly MigrationHistory[] = [moduleHistory('events', eventsMigrations), moduleHistory('jobs', jobsMigrations)];

/** The modules whose tables live on the main database. */
export const MAIN_DATABASE_HISTORIES: readonly MigrationHistory[] = [
  moduleHistory('catalog', catalogMigrations),
  moduleHistory('buyers', buyersMigrations),
  moduleHistory('leaders', leadersMigrations),
  moduleHistory('inventory', inventoryMigrations),
  moduleHistory('cart', cartMigrations),
  moduleHistory('promotions', promotionsMigrations),
  moduleHistory('coupons', couponsMigrations),
  moduleHistory('points', pointsMigrations),
  moduleHistory('payments_main', paymentsMainMigrations),
  ...EVERY_DATABASE,
  moduleHistory('consistency', consistencyMigrations),
  moduleHistory('access', accessMigrations),
];

/** The modules whose tables live on every order shard (a payment lives beside its order). */
export const ORDER_SHARD_HISTORIES: readonly MigrationHistory[] = [
  moduleHistory('orders', ordersMigrations),
  moduleHistory('payments_shard', paymentsShardMigrations),
  ...EVERY_DATABASE,
];

/** The histories a database runs: the main side, the shard side, or both when it is both (one database by default). */
export function historiesFor(role: { main: boolean; orderShard: boolean }): MigrationHistory[] {
  const histories = [...(role.main ? MAIN_DATABASE_HISTORIES : []), ...(role.orderShard ? ORDER_SHARD_HISTORIES : [])];
  return histories.filter((history, index) => histories.findIndex((other) => other.table === history.table) === index);
}

/** Migrates one database to the latest of each history it runs, handing a legacy one over first; returns what it applied. */
export async function migrateDatabase(db: Kysely<any>, histories: readonly MigrationHistory[]): Promise<string[]> {
  const applied = await adoptLegacyDatabase(db, histories);
  for (const history of histories) applied.push(...(await runMigrations(db, history)).map((name) => `${history.name}/${name}`));
  return applied;
}

/** Migrates the main database and the order shards (a handle listed twice is one database); what each applied. */
export async function migrateDatabases(main: Kysely<any>, orderShards: readonly Kysely<any>[]): Promise<Map<Kysely<any>, string[]>> {
  const applied = new Map<Kysely<any>, string[]>();
  for (const db of new Set([main, ...orderShards])) {
    applied.set(db, await migrateDatabase(db, historiesFor({ main: db === main, orderShard: orderShards.includes(db) })));
  }
  return applied;
}
