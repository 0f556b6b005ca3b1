import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Config {
  /** Where catalog, inventory, cart and the other non-order modules live. */
  databaseUrl: string;
  /** The physical order shards; every logical slot maps to one of these. */
  orderShardUrls: string[];
  port: number;
  host: string;
  dataDir: string;
  tokenSecret: string;
  /** 超时取消: unpaid orders are cancelled this long after checkout. */
  paymentTimeout_ms: number;
  nodeId: number | undefined;
}

export const DEFAULT_PAYMENT_TIMEOUT_MS = 15 * 60 * 1000;

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const dataDir = env.TUANGOU_DATA_DIR ?? './data';
  const databaseUrl = env.DATABASE_URL ?? `sqlite:${join(dataDir, 'tuangou.db')}`;
  const orderShardUrls = env.ORDER_SHARD_URLS
    ? env.ORDER_SHARD_URLS.split(',').map((s) => s.trim()).filter(Boolean)
    : [databaseUrl];
  return {
    databaseUrl,
    orderShardUrls,
    port: intFromEnv(env.PORT, 3000, 'PORT'),
    host: env.HOST ?? '127.0.0.1',
    dataDir,
    tokenSecret: env.TOKEN_SECRET ?? developmentSecret(dataDir),
    paymentTimeout_ms: intFromEnv(env.ORDER_PAYMENT_TIMEOUT_MS, DEFAULT_PAYMENT_TIMEOUT_MS, 'ORDER_PAYMENT_TIMEOUT_MS'),
    nodeId: env.TUANGOU_NODE_ID === undefined ? undefined : intFromEnv(env.TUANGOU_NODE_ID, 0, 'TUANGOU_NODE_ID'),
  };
}

function intFromEnv(value: string | undefined, fallback: number, name: string): number {
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got "${value}"`);
  return n;
}

/**
 * Without TOKEN_SECRET a development secret is made on first start and kept in the data
 * folder, so tokens printed by `tuangou start` stay valid across restarts.
 */
function developmentSecret(dataDir: string): string {
  const file = join(dataDir, 'dev-token-secret');
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  mkdirSync(dataDir, { recursive: true });
  const secret = randomBytes(32).toString('hex');
  writeFileSync(file, secret + '\n', { mode: 0o600 });
  return secret;
}
