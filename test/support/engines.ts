import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createConnection } from 'mysql2/promise';
import pg from 'pg';

/**
 * The engines the flow tests run on. SQLite always; PostgreSQL and MariaDB when their
 * server URL is set. With TUANGOU_REQUIRE_ENGINES (CI sets it) a missing engine is a failure.
 */
export type EngineName = 'sqlite' | 'postgres' | 'mysql';

export interface TestDatabase {
  url: string;
  drop(): Promise<void>;
}

export interface Engine {
  name: EngineName;
  createDatabase(): Promise<TestDatabase>;
}

const ENV_OF: Record<Exclude<EngineName, 'sqlite'>, string> = { postgres: 'TEST_POSTGRES_URL', mysql: 'TEST_MYSQL_URL' };

export function requiredEngines(): EngineName[] {
  const raw = process.env.TUANGOU_REQUIRE_ENGINES;
  if (!raw) return [];
  return (raw === 'all' ? ['sqlite', 'postgres', 'mysql'] : raw.split(',').map((s) => s.trim())) as EngineName[];
}

export function skippedEngines(): { name: EngineName; env: string }[] {
  return (Object.keys(ENV_OF) as Exclude<EngineName, 'sqlite'>[]).filter((n) => !process.env[ENV_OF[n]]).map((name) => ({ name, env: ENV_OF[name] }));
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

function postgres(serverUrl: string): Engine {
  return {
    name: 'postgres',
    async createDatabase() {
      const name = uniqueName();
      const admin = new pg.Client({ connectionString: serverUrl });
      await admin.connect();
      await admin.query(`create database ${name}`);
      await admin.end();
      const url = new URL(serverUrl);
      url.pathname = `/${name}`;
      return {
        url: url.toString(),
        drop: async () => {
          const c = new pg.Client({ connectionString: serverUrl });
          await c.connect();
          await c.query(`drop database if exists ${name} with (force)`);
          await c.end();
        },
      };
    },
  };
}

function mysql(serverUrl: string): Engine {
  return {
    name: 'mysql',
    async createDatabase() {
      const name = uniqueName();
      const admin = await createConnection(serverUrl);
      await admin.query(`create database ${name}`);
      await admin.end();
      const url = new URL(serverUrl);
      url.pathname = `/${name}`;
      return {
        url: url.toString(),
        drop: async () => {
          const c = await createConnection(serverUrl);
          await c.query(`drop database if exists ${name}`);
          await c.end();
        },
      };
    },
  };
}

export function availableEngines(): Engine[] {
  const engines: Engine[] = [sqlite];
  if (process.env.TEST_POSTGRES_URL) engines.push(postgres(process.env.TEST_POSTGRES_URL));
  if (process.env.TEST_MYSQL_URL) engines.push(mysql(process.env.TEST_MYSQL_URL));
  const missing = requiredEngines().filter((name) => !engines.some((e) => e.name === name));
  if (missing.length) {
    throw new Error(`TUANGOU_REQUIRE_ENGINES wants ${missing.join(', ')} but ${missing.map((m) => (m === 'sqlite' ? '' : ENV_OF[m])).join(', ')} is not set`);
  }
  return engines;
}
