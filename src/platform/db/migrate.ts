import { Migrator, sql, type Kysely, type Migration } from 'kysely';
import { dialectOf } from './database.ts';

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

/**
 * Runs the history's migrations not yet applied on this database; returns the names it ran. An
 * up-to-date history is seen with two reads, without Kysely's Migrator: it would introspect and
 * lock each of the many histories on every start, seconds on a server engine.
 */
export async function runMigrations(db: Kysely<any>, history: MigrationHistory): Promise<string[]> {
  const applied = new Set(await appliedMigrations(db, history));
  if (Object.keys(history.migrations).every((name) => applied.has(name))) return [];
  return toLatest(migratorFor(db, history, history.migrations));
}

/** Names of the history's migrations recorded as applied on this database, in order (none if it has no history table). */
export async function appliedMigrations(db: Kysely<any>, history: MigrationHistory): Promise<string[]> {
  if (!(await hasTable(db, history.table))) return [];
  // Kysely's history table: one row per applied migration, keyed by its name.
  const rows = await db.selectFrom(history.table).select('name').orderBy('name').execute();
  return rows.map((row) => String(row.name));
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

/** Whether the database has the table, by one indexed read of the engine's catalogue. */
export async function hasTable(db: Kysely<any>, table: string): Promise<boolean> {
  const dialect = dialectOf(db);
  const found =
    dialect === 'sqlite'
      ? await sql`select 1 as found from sqlite_master where type = 'table' and name = ${table}`.execute(db)
      : await sql`select 1 as found from information_schema.tables where table_schema = ${dialect === 'postgres' ? sql`current_schema()` : sql`database()`} and table_name = ${table}`.execute(db);
  return found.rows.length > 0;
}
