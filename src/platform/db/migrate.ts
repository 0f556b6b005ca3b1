import { Migrator, type Kysely, type Migration } from 'kysely';

/**
 * One migration history: the ordered migrations of one module (or one side of a module) and the
 * tables Kysely keeps their record and its lock in. Each module's history is its own, so a module
 * runs only on the databases that hold its tables and adds a migration without touching another's.
 */
export interface MigrationHistory {
  /** The module (or module side) whose history this is, as reports name it. */
  name: string;
  /** Ordered by name; add a file and a line, never edit a landed one. */
  migrations: Record<string, Migration>;
  table: string;
  lockTable: string;
}

/** A module's history, kept in migrations_<module> (and its lock in migrations_<module>_lock). */
export function moduleHistory(module: string, migrations: Record<string, Migration>): MigrationHistory {
  return { name: module, migrations, table: `migrations_${module}`, lockTable: `migrations_${module}_lock` };
}

function migratorFor(db: Kysely<any>, history: MigrationHistory, migrations: Record<string, Migration>): Migrator {
  return new Migrator({
    db,
    provider: { getMigrations: async () => migrations },
    migrationTableName: history.table,
    migrationLockTableName: history.lockTable,
  });
}

async function toLatest(migrator: Migrator): Promise<string[]> {
  const { error, results } = await migrator.migrateToLatest();
  if (error) throw error instanceof Error ? error : new Error(String(error));
  return (results ?? []).filter((result) => result.status === 'Success').map((result) => result.migrationName);
}

/** Runs the history's migrations not yet applied on this database; returns the names it ran. */
export async function runMigrations(db: Kysely<any>, history: MigrationHistory): Promise<string[]> {
  return toLatest(migratorFor(db, history, history.migrations));
}

/** Names of the history's migrations recorded as applied on this database (none if it has no history table). */
export async function appliedMigrations(db: Kysely<any>, history: MigrationHistory): Promise<string[]> {
  if (!(await hasTable(db, history.table))) return [];
  const migrations = await migratorFor(db, history, history.migrations).getMigrations();
  return migrations.filter((migration) => migration.executedAt !== undefined).map((migration) => migration.name);
}

/**
 * Records the first `names` of the history as applied without running them, for a database whose
 * tables were already made in that shape by other means (an upgraded one). Kysely writes the
 * record under the history's lock, as for a real run; the names must be a prefix of the history.
 */
export async function recordAsApplied(db: Kysely<any>, history: MigrationHistory, names: readonly string[]): Promise<string[]> {
  const ordered = Object.keys(history.migrations).sort();
  const prefix = ordered.slice(0, names.length);
  if (prefix.join() !== [...names].sort().join()) {
    throw new Error(`${history.table}: ${names.join(', ')} is not the start of the history (${ordered.join(', ')})`);
  }
  const skipped: Record<string, Migration> = {};
  for (const name of prefix) skipped[name] = { up: async () => {} };
  return toLatest(migratorFor(db, history, skipped));
}

export async function hasTable(db: Kysely<any>, table: string): Promise<boolean> {
  const tables = await db.introspection.getTables({ withInternalKyselyTables: true });
  return tables.some((each) => each.name === table);
}
