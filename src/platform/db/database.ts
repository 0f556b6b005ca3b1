import { dirname } from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, MysqlAdapter, MysqlDialect, PostgresAdapter, PostgresDialect, SqliteDialect } from 'kysely';
import type pgModule from 'pg';
import { ensurePrivateDir, ensurePrivateFile } from '../files.ts';

export type Dialect = 'sqlite' | 'postgres' | 'mysql';
/** A handle whose tables the caller knows: platform code names no table, so it takes any. */
export type AnyDb = Kysely<any>;

/** Connections per pool on the server engines; the machines have 2 cores. */
export const POOL_SIZE = 16;

export function dialectOfUrl(url: string): Dialect {
  if (url.startsWith('sqlite:') || url.startsWith('file:')) return 'sqlite';
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) return 'postgres';
  if (url.startsWith('mysql://') || url.startsWith('mariadb://')) return 'mysql';
  throw new Error(`DATABASE_URL must start with sqlite:, postgres:// or mysql://, got "${url}"`);
}

/** The dialect of a handle or of a transaction on it, read from its adapter. */
export function dialectOf(db: Kysely<any>): Dialect {
  const adapter = db.getExecutor().adapter;
  if (adapter instanceof PostgresAdapter) return 'postgres';
  if (adapter instanceof MysqlAdapter) return 'mysql';
  return 'sqlite';
}

export function sqlitePath(url: string): string {
  return url.replace(/^(sqlite|file):(\/\/)?/, '');
}

/** Prepared statements kept per SQLite connection; the app has a few dozen distinct queries. */
export const SQLITE_STATEMENT_CACHE_SIZE = 512;

/**
 * Kysely prepares every query anew; on SQLite preparing costs as much as running. The same
 * SQL text gets the same prepared statement back (least recently used evicted past the limit).
 */
function withStatementCache(database: SQLite.Database) {
  const cache = new Map<string, SQLite.Statement>();
  return {
    close: () => database.close(),
    prepare: (sql: string) => {
      let statement = cache.get(sql);
      if (statement) {
        cache.delete(sql);
      } else {
        statement = database.prepare(sql);
        if (cache.size >= SQLITE_STATEMENT_CACHE_SIZE) cache.delete(cache.keys().next().value!);
      }
      cache.set(sql, statement);
      return statement;
    },
  };
}

let pgTypesSet = false;
function parsePgNumbers(pg: typeof pgModule): void {
  if (pgTypesSet) return;
  pgTypesSet = true;
  // BIGINT and NUMERIC (what SUM returns) as numbers; amounts are far below 2^53 fen.
  const toSafeNumber = (value: string): number => {
    const n = Number(value);
    if (!Number.isSafeInteger(n)) throw new Error(`database returned an unsafe integer: ${value}`);
    return n;
  };
  pg.types.setTypeParser(20, toSafeNumber);
  pg.types.setTypeParser(1700, toSafeNumber);
}

/** The server drivers load only when their engine is used: the embedded default needs neither. */
export async function openDatabase(url: string): Promise<AnyDb> {
  const dialect = dialectOfUrl(url);
  if (dialect === 'sqlite') {
    const path = sqlitePath(url);
    if (path !== ':memory:') {
      // SQLite gives its -wal and -shm files the mode of the database file.
      ensurePrivateDir(dirname(path));
      ensurePrivateFile(path);
    }
    const database = new SQLite(path);
    database.pragma('journal_mode = WAL');
    // NORMAL in WAL mode is durable against application crashes; only an OS crash can lose the last commits.
    database.pragma('synchronous = NORMAL');
    database.pragma('busy_timeout = 5000');
    return new Kysely<any>({ dialect: new SqliteDialect({ database: withStatementCache(database) }) });
  }
  if (dialect === 'postgres') {
    const pg = (await import('pg')).default;
    parsePgNumbers(pg);
    const pool = new pg.Pool({ connectionString: url, max: POOL_SIZE });
    // An idle connection the server closes (restart, admin kill) must not crash the process:
    // the pool drops it and the next query opens a fresh one.
    pool.on('error', (error) => process.emitWarning(`postgres idle connection lost: ${error.message}`));
    return new Kysely<any>({ dialect: new PostgresDialect({ pool }) });
  }
  const { createPool } = await import('mysql2');
  const pool = createPool({
    uri: url.replace(/^mariadb:/, 'mysql:'),
    connectionLimit: POOL_SIZE,
    supportBigNumbers: true,
    bigNumberStrings: false,
    decimalNumbers: true,
    timezone: 'Z',
  });
  return new Kysely<any>({ dialect: new MysqlDialect({ pool }) });
}
