import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, MysqlAdapter, MysqlDialect, PostgresAdapter, PostgresDialect, SqliteDialect } from 'kysely';
import { createPool } from 'mysql2';
import pg from 'pg';
import type { DB } from './schema.ts';

export type Dialect = 'sqlite' | 'postgres' | 'mysql';
export type Db = Kysely<DB>;

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

let pgTypesSet = false;
function parsePgNumbers(): void {
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

export function openDatabase(url: string): Db {
  const dialect = dialectOfUrl(url);
  if (dialect === 'sqlite') {
    const path = sqlitePath(url);
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    const database = new SQLite(path);
    database.pragma('journal_mode = WAL');
    // NORMAL in WAL mode is durable against application crashes; only an OS crash can lose the last commits.
    database.pragma('synchronous = NORMAL');
    database.pragma('busy_timeout = 5000');
    return new Kysely<DB>({ dialect: new SqliteDialect({ database }) });
  }
  if (dialect === 'postgres') {
    parsePgNumbers();
    const pool = new pg.Pool({ connectionString: url, max: POOL_SIZE });
    // An idle connection the server closes (restart, admin kill) must not crash the process:
    // the pool drops it and the next query opens a fresh one.
    pool.on('error', (error) => process.emitWarning(`postgres idle connection lost: ${error.message}`));
    return new Kysely<DB>({ dialect: new PostgresDialect({ pool }) });
  }
  const pool = createPool({
    uri: url.replace(/^mariadb:/, 'mysql:'),
    connectionLimit: POOL_SIZE,
    supportBigNumbers: true,
    bigNumberStrings: false,
    decimalNumbers: true,
    timezone: 'Z',
  });
  return new Kysely<DB>({ dialect: new MysqlDialect({ pool }) });
}
