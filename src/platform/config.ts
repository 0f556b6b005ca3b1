import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dialectOfUrl } from './db/database.ts';
import { ensurePrivateDir } from './files.ts';
import { checkTokenSecret } from './http/tokens.ts';

export interface Config {
  /** Where catalog, inventory, cart and the other non-order modules live. */
  databaseUrl: string;
  /** The physical order shards; every logical slot maps to one of these. */
  orderShardUrls: string[];
  port: number;
  host: string;
  dataDir: string;
  /** HMAC key of the bearer tokens, at least MIN_TOKEN_SECRET_BYTES. */
  tokenSecret: string;
  /** Secrets being rotated out: tokens they signed verify until they expire; new ones are signed with tokenSecret. */
  previousTokenSecrets?: string[] | undefined;
  /** 超时取消: unpaid orders are cancelled this long after checkout. */
  paymentTimeout_ms: number;
  nodeId: number | undefined;
  /** Our address as payment channels reach it, for their notifications; defaults to http://HOST:PORT. */
  publicUrl?: string | undefined;
  /** HTTP limits (defaults in platform/http/server.ts): a request must arrive whole within requestTimeout_ms. */
  http?: Partial<HttpLimits> | undefined;
  /** 熔断: when a failing payment channel leaves the cashier and when it is probed (CHANNEL_BREAKER_*). */
  channelBreaker?: { failures?: number; window_ms?: number; open_ms?: number } | undefined;
  /** Behind a TLS-terminating proxy: trust its X-Forwarded-* headers (TRUST_PROXY=1), so HSTS is sent on https. */
  trustProxy?: boolean | undefined;
  /**
   * Hosts a payment's returnUrl (where the cashier sends the buyer back) may point at; https only,
   * except that on the embedded default http and the loopback hosts are allowed (development).
   */
  returnUrlHosts?: string[] | undefined;
  allowHttpReturnUrls?: boolean | undefined;
  /** Where `tuangou start` runs the channel sandbox when no real channel is configured (0: pick a free port). */
  sandboxPort?: number | undefined;
  /** 秒杀: hot activities' stock is served from this Redis; unset, the database serves all stock. */
  redisUrl?: string | undefined;
  /** Put before every Redis key, so several deployments (or test files) can share one Redis. */
  redisKeyPrefix?: string | undefined;
  /** Serve Prometheus metrics at GET /metrics (unauthenticated); on unless METRICS_ENABLED=false. */
  metricsEnabled?: boolean | undefined;
  /** The event bus: NATS JetStream at this URL; unset, events go to consumers in-process. */
  natsUrl?: string | undefined;
  /** The JetStream stream and subject prefix (several deployments or test files can share one server). */
  natsStream?: string | undefined;
  natsSubjectPrefix?: string | undefined;
  /** Per-buyer checkout limits (CHECKOUT_* variables); unset, the defaults named beside each in the README. */
  maxOpenOrdersPerBuyer?: number | undefined;
  maxUnpaidUnitsPerBuyerSku?: number | undefined;
  /** Checkouts one buyer may submit per checkoutRateWindow_ms (counted in Redis when redisUrl is set). */
  checkoutRateLimit?: number | undefined;
  checkoutRateWindow_ms?: number | undefined;
}

export interface HttpLimits {
  /** The whole request (headers and body) must arrive within this; a trickle is cut off with 408. */
  requestTimeout_ms: number;
  /** A socket with nothing moving is closed after this. */
  connectionTimeout_ms: number;
  /** An idle keep-alive connection is closed after this. */
  keepAliveTimeout_ms: number;
  /** Open connections past this are refused at once. */
  maxConnections: number;
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
    tokenSecret: tokenSecretFrom(env, dataDir, dialectOfUrl(databaseUrl) === 'sqlite'),
    previousTokenSecrets: previousSecretsFrom(env.TOKEN_PREVIOUS_SECRETS),
    paymentTimeout_ms: intFromEnv(env.ORDER_PAYMENT_TIMEOUT_MS, DEFAULT_PAYMENT_TIMEOUT_MS, 'ORDER_PAYMENT_TIMEOUT_MS'),
    nodeId: env.TUANGOU_NODE_ID === undefined ? undefined : intFromEnv(env.TUANGOU_NODE_ID, 0, 'TUANGOU_NODE_ID'),
    publicUrl: env.PUBLIC_URL || undefined,
    http: {
      ...(env.HTTP_REQUEST_TIMEOUT_MS && { requestTimeout_ms: intFromEnv(env.HTTP_REQUEST_TIMEOUT_MS, 0, 'HTTP_REQUEST_TIMEOUT_MS') }),
      ...(env.HTTP_CONNECTION_TIMEOUT_MS && { connectionTimeout_ms: intFromEnv(env.HTTP_CONNECTION_TIMEOUT_MS, 0, 'HTTP_CONNECTION_TIMEOUT_MS') }),
      ...(env.HTTP_KEEP_ALIVE_TIMEOUT_MS && { keepAliveTimeout_ms: intFromEnv(env.HTTP_KEEP_ALIVE_TIMEOUT_MS, 0, 'HTTP_KEEP_ALIVE_TIMEOUT_MS') }),
      ...(env.HTTP_MAX_CONNECTIONS && { maxConnections: intFromEnv(env.HTTP_MAX_CONNECTIONS, 0, 'HTTP_MAX_CONNECTIONS') }),
    },
    channelBreaker: {
      ...(env.CHANNEL_BREAKER_FAILURES && { failures: intFromEnv(env.CHANNEL_BREAKER_FAILURES, 5, 'CHANNEL_BREAKER_FAILURES') }),
      ...(env.CHANNEL_BREAKER_WINDOW_MS && { window_ms: intFromEnv(env.CHANNEL_BREAKER_WINDOW_MS, 30_000, 'CHANNEL_BREAKER_WINDOW_MS') }),
      ...(env.CHANNEL_BREAKER_OPEN_MS && { open_ms: intFromEnv(env.CHANNEL_BREAKER_OPEN_MS, 30_000, 'CHANNEL_BREAKER_OPEN_MS') }),
    },
    trustProxy: ['1', 'true'].includes((env.TRUST_PROXY ?? '').toLowerCase()),
    ...returnUrlRules(env, dialectOfUrl(databaseUrl) === 'sqlite'),
    sandboxPort: env.SANDBOX_PORT === undefined ? undefined : intFromEnv(env.SANDBOX_PORT, 0, 'SANDBOX_PORT'),
    redisUrl: env.REDIS_URL || undefined,
    redisKeyPrefix: env.REDIS_KEY_PREFIX || undefined,
    metricsEnabled: !['false', '0', 'off', 'no'].includes((env.METRICS_ENABLED ?? '').toLowerCase()),
    natsUrl: env.NATS_URL || undefined,
    natsStream: env.NATS_STREAM || undefined,
    natsSubjectPrefix: env.NATS_SUBJECT_PREFIX || undefined,
    maxOpenOrdersPerBuyer: positiveIntFromEnv(env.CHECKOUT_MAX_OPEN_ORDERS_PER_BUYER, 'CHECKOUT_MAX_OPEN_ORDERS_PER_BUYER'),
    maxUnpaidUnitsPerBuyerSku: positiveIntFromEnv(env.CHECKOUT_MAX_UNPAID_UNITS_PER_SKU, 'CHECKOUT_MAX_UNPAID_UNITS_PER_SKU'),
    checkoutRateLimit: positiveIntFromEnv(env.CHECKOUT_RATE_LIMIT, 'CHECKOUT_RATE_LIMIT'),
    checkoutRateWindow_ms: positiveIntFromEnv(env.CHECKOUT_RATE_WINDOW_MS, 'CHECKOUT_RATE_WINDOW_MS'),
  };
}

/** A limit: unset stays unset (the caller's default applies); set, a whole number of at least 1. */
function positiveIntFromEnv(value: string | undefined, name: string): number | undefined {
  if (value === undefined || value === '') return undefined;
  const n = intFromEnv(value, 0, name);
  if (n < 1) throw new Error(`${name} must be at least 1, got "${value}"`);
  return n;
}

/**
 * RETURN_URL_HOSTS (comma-separated host names), else the host of PUBLIC_URL; on the embedded
 * default also 127.0.0.1 and localhost over http, so the demo's pages can be returned to.
 */
function returnUrlRules(env: NodeJS.ProcessEnv, embedded: boolean): { returnUrlHosts: string[]; allowHttpReturnUrls: boolean } {
  const listed = (env.RETURN_URL_HOSTS ?? '').split(',').map((h) => h.trim().toLowerCase()).filter(Boolean);
  const hosts = listed.length > 0 ? listed : env.PUBLIC_URL ? [new URL(env.PUBLIC_URL).hostname] : [];
  return { returnUrlHosts: embedded ? [...new Set([...hosts, '127.0.0.1', 'localhost'])] : hosts, allowHttpReturnUrls: embedded };
}

function intFromEnv(value: string | undefined, fallback: number, name: string): number {
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got "${value}"`);
  return n;
}

/**
 * TOKEN_SECRET, which must be long enough to be a key (set but empty is refused, not taken as
 * "unset"). Without it, only the embedded SQLite default makes a development secret; a server
 * database is a deployment, and a deployment that forgot its secret must not start.
 */
function tokenSecretFrom(env: NodeJS.ProcessEnv, dataDir: string, embedded: boolean): string {
  if (env.TOKEN_SECRET !== undefined) {
    checkTokenSecret(env.TOKEN_SECRET);
    return env.TOKEN_SECRET;
  }
  if (!embedded) throw new Error('TOKEN_SECRET is required with a PostgreSQL or MySQL DATABASE_URL (at least 32 bytes, e.g. `openssl rand -hex 32`)');
  return developmentSecret(dataDir);
}

function previousSecretsFrom(value: string | undefined): string[] | undefined {
  if (!value) return undefined;
  const secrets = value.split(',').map((s) => s.trim()).filter(Boolean);
  for (const secret of secrets) checkTokenSecret(secret, 'each of TOKEN_PREVIOUS_SECRETS');
  return secrets;
}

/**
 * Without TOKEN_SECRET a development secret is made on first start and kept in the data
 * folder, so tokens printed by `tuangou start` stay valid across restarts.
 */
function developmentSecret(dataDir: string): string {
  const file = join(dataDir, 'dev-token-secret');
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  ensurePrivateDir(dataDir);
  const secret = randomBytes(32).toString('hex');
  writeFileSync(file, secret + '\n', { mode: 0o600 });
  return secret;
}
