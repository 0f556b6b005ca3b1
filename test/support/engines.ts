import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createConnection } from 'mysql2/promise';
import pg from 'pg';

/**
 * The engines the flow tests run on. SQLite always; PostgreSQL and MariaDB when their
 * server URL is set. With TUANGOU_REQUIRE_ENGINES (CI sets it) a missing engine is a failure.
 * Redis (the flash-sale tests) is a service named the same way: TEST_REDIS_URL, and `redis` in
 * TUANGOU_REQUIRE_ENGINES. NATS JetStream (the event bus tests) likewise: TEST_NATS_URL and `nats`.
 */
export type EngineName = 'sqlite' | 'postgres' | 'mysql';
export type ServiceName = EngineName | 'redis' | 'nats';

export interface TestDatabase {
  url: string;
  drop(): Promise<void>;
}

export interface Engine {
  name: EngineName;
  createDatabase(): Promise<TestDatabase>;
}

const ENV_OF: Record<Exclude<ServiceName, 'sqlite'>, string> = { postgres: 'TEST_POSTGRES_URL', mysql: 'TEST_MYSQL_URL', redis: 'TEST_REDIS_URL', nats: 'TEST_NATS_URL' };

export function requiredEngines(): ServiceName[] {
  const raw = process.env.TUANGOU_REQUIRE_ENGINES;
  if (!raw) return [];
  return (raw === 'all' ? ['sqlite', 'postgres', 'mysql', 'redis', 'nats'] : raw.split(',').map((s) => s.trim())) as ServiceName[];
}

export function skippedEngines(): { name: ServiceName; env: string }[] {
  return (Object.keys(ENV_OF) as Exclude<ServiceName, 'sqlite'>[]).filter((n) => !process.env[ENV_OF[n]]).map((name) => ({ name, env: ENV_OF[name] }));
}

/** The Redis the flash-sale flow tests use, or undefined (they are skipped) — unless it is required. */
export function testRedisUrl(): string | undefined {
  const url = process.env.TEST_REDIS_URL || undefined;
  if (!url && requiredEngines().includes('redis')) throw new Error('TUANGOU_REQUIRE_ENGINES wants redis but TEST_REDIS_URL is not set');
  return url;
}

/** The NATS server (with JetStream) the event bus tests use, or undefined (they are skipped) — unless it is required. */
export function testNatsUrl(): string | undefined {
  const url = process.env.TEST_NATS_URL || undefined;
  if (!url && requiredEngines().includes('nats')) throw new Error('TUANGOU_REQUIRE_ENGINES wants nats but TEST_NATS_URL is not set');
  return url;
}

function uniqueName(): string {
  return `tg_test_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
}

const sqlite: Engine = {
  name: 'sqlite',
  async createDatabase() {
    const dir = mkdtempSync(join(tmpdir(), 'tuangou-test-'));
    return { url: `sqlite:${join(dir, 'test.db')}`, drop: async () => rmSync(dir, { recursive: true, force: true }) };
  },
};

/** A server engine: each test file gets a database of its own, dropped afterwards. */
function serverEngine(name: 'postgres' | 'mysql', serverUrl: string, run: (serverUrl: string, statement: string) => Promise<void>): Engine {
  return {
    name,
    async createDatabase() {
      const database = uniqueName();
      await run(serverUrl, `create database ${database}`);
      const url = new URL(serverUrl);
      url.pathname = `/${database}`;
      // PostgreSQL refuses to drop a database with open connections unless forced.
      return { url: url.toString(), drop: () => run(serverUrl, `drop database if exists ${database}${name === 'postgres' ? ' with (force)' : ''}`) };
    },
  };
}

async function runOnPostgres(serverUrl: string, statement: string): Promise<void> {
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    await client.query(statement);
  } finally {
    await client.end();
  }
}

async function runOnMysql(serverUrl: string, statement: string): Promise<void> {
  const connection = await createConnection(serverUrl);
  try {
    await connection.query(statement);
  } finally {
    await connection.end();
  }
}

export function availableEngines(): Engine[] {
  const engines: Engine[] = [sqlite];
  if (process.env.TEST_POSTGRES_URL) engines.push(serverEngine('postgres', process.env.TEST_POSTGRES_URL, runOnPostgres));
  if (process.env.TEST_MYSQL_URL) engines.push(serverEngine('mysql', process.env.TEST_MYSQL_URL, runOnMysql));
  const missing = requiredEngines().filter((name) => name !== 'redis' && name !== 'nats' && !engines.some((e) => e.name === name));
  if (missing.length) {
    throw new Error(`TUANGOU_REQUIRE_ENGINES wants ${missing.join(', ')} but ${missing.map((m) => (m === 'sqlite' ? '' : ENV_OF[m])).join(', ')} is not set`);
  }
  return engines;
}
