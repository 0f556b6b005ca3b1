import type { TestDb } from './db.ts';
import pino from 'pino';
import { expect } from 'vitest';
import { createApp, type App } from '../../src/app.ts';
import { createStock, stockLevels, type StockLevel } from '../../src/inventory/index.ts';
import { createProduct, createMerchant, insertActivity, PAYEE_CHANNELS, setMerchantChannelAccount, type InventoryMode, type PayeeChannel } from '../../src/catalog/index.ts';
import { createLeader } from '../../src/leaders/index.ts';
import { transaction } from '../../src/platform/db/retry.ts';
import { ignoreDuplicates } from '../../src/platform/db/sql.ts';
import { keyId, signToken, type Principal } from '../../src/platform/http/tokens.ts';
import { createHmac } from 'node:crypto';
import { buildHttp } from '../../src/http.ts';
import type { Server } from '../../src/platform/http/server.ts';
import type { Config } from '../../src/platform/config.ts';
import type { Engine, TestDatabase } from './engines.ts';
import type { ConsumerRetry } from '../../src/events/broker.ts';
import type { EventBus } from '../../src/events/relay.ts';
import { channelSettingsForSandbox, generateSandboxKeys, startChannelSandbox, type SandboxHandle, type SandboxKeys } from '../../src/tools/sandbox/index.ts';

/** Sandbox keys are made once per test file: RSA key generation is the slow part of starting one. */
let sandboxKeys: SandboxKeys | undefined;

/** The tests' HMAC key: as long as a real one must be (MIN_TOKEN_SECRET_BYTES). */
export const TEST_TOKEN_SECRET = 'test-secret-of-the-flow-tests-32b';

/**
 * A token as an attacker holding the key would make it: any claims (subjects signToken refuses,
 * say) under the tests' key id and a valid signature. Expires in 10 minutes unless `exp` is given.
 */
export function signClaims(claims: Record<string, unknown>, now_ms = Date.now()): string {
  const header = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT', kid: keyId(TEST_TOKEN_SECRET) })).toString('base64url');
  const payload = Buffer.from(JSON.stringify({ iat: Math.floor(now_ms / 1000), exp: Math.floor(now_ms / 1000) + 600, jti: 'forged', ...claims })).toString('base64url');
  return `${header}.${payload}.${createHmac('sha256', TEST_TOKEN_SECRET).update(`${header}.${payload}`).digest('base64url')}`;
}

export const HOUR_MS = 3600_000;
/** A limit no test reaches (for the limits a test is not about). */
const UNLIMITED = 1_000_000_000;

/** Real time plus an offset the test can move forward. */
export class TestClock {
  offset_ms = 0;
  now = (): number => Date.now() + this.offset_ms;
  advance(ms: number): void {
    this.offset_ms += ms;
  }
}

export interface Harness {
  app: App;
  http: Server;
  clock: TestClock;
  databases: TestDatabase[];
  /** A buyer's token; the buyer is registered (if new) before the first request carrying it. */
  buyerToken(buyerId: number): string;
  /** A token for a buyer the platform has no record of (nothing registers it). */
  unknownBuyerToken(buyerId: number): string;
  adminToken(): string;
  /** A token for any principal, signed as the app expects; issued `issuedAgo_ms` before now (to make expired ones). */
  token(principal: Principal, options?: { issuedAgo_ms?: number; ttl_s?: number }): string;
  /** The channel sandbox, when the harness was started with one; the API then listens on a real port. */
  sandbox: SandboxHandle | undefined;
  /** Closes the app; with keepDatabases the databases stay for a restarted app. */
  close(options?: { keepDatabases?: boolean }): Promise<void>;
}

export async function startHarness(
  engine: Engine,
  options: {
    shards?: number;
    databases?: TestDatabase[];
    clock?: TestClock;
    paymentTimeout_ms?: number;
    /** Start the payment channel sandbox; its retry schedule is scaled by retryScale (default 0.001). */
    sandbox?: { retryScale?: number };
    /** 秒杀 through this Redis, under keys starting with redisKeyPrefix. */
    redisUrl?: string;
    redisKeyPrefix?: string;
    /** Events through this NATS JetStream, on a stream and subjects of the test's own. */
    nats?: { url: string; stream: string; subjectPrefix: string; consumerRetry?: ConsumerRetry };
    /** false: no relay, consumers or jobs in this app (another app does them). */
    worker?: boolean;
    /** Extra consumers, subscribed before the consumers start. */
    subscribe?: (bus: EventBus) => void;
    /** The consistency reconciler's chain of passes; off (0) unless asked: tests run passes by hand. */
    reconcileInterval_ms?: number;
    /** The app's logger (tests that read the log lines); silent by default. */
    log?: pino.Logger;
    /** false: the app leaves the databases' schema alone (the upgrade test opens it on a legacy database). */
    migrate?: boolean;
    /** Token secrets being rotated out, accepted beside TEST_TOKEN_SECRET. */
    previousTokenSecrets?: string[];
    /** Settings of the app's config beyond the harness's own (HTTP limits, returnUrl hosts, …). */
    config?: Partial<Config>;
    /**
     * Per-buyer checkout limits (CHECKOUT_* settings). Out of the way unless given: race tests send
     * a hundred checkouts of one buyer at once; test/buyer-limits.flow.test.ts tests the defaults.
     */
    limits?: { maxOpenOrdersPerBuyer?: number; maxUnpaidUnitsPerBuyerSku?: number; checkoutRateLimit?: number; checkoutRateWindow_ms?: number };
  } = {},
): Promise<Harness> {
  const databases = options.databases ?? (await Promise.all(Array.from({ length: options.shards ?? 1 }, () => engine.createDatabase())));
  const clock = options.clock ?? new TestClock();
  const tokenSecret = TEST_TOKEN_SECRET;
  let sandbox: SandboxHandle | undefined;
  if (options.sandbox) {
    sandboxKeys ??= generateSandboxKeys();
    sandbox = await startChannelSandbox({ keys: sandboxKeys, core: { retryScale: options.sandbox.retryScale ?? 0.001, now: clock.now } });
  }
  const app = await createApp(
    {
      databaseUrl: databases[0]!.url,
      orderShardUrls: databases.map((d) => d.url),
      port: 0,
      host: '127.0.0.1',
      dataDir: '/nonexistent',
      tokenSecret,
      previousTokenSecrets: options.previousTokenSecrets,
      paymentTimeout_ms: options.paymentTimeout_ms ?? 15 * 60_000,
      nodeId: 1,
      redisUrl: options.redisUrl,
      redisKeyPrefix: options.redisKeyPrefix,
      natsUrl: options.nats?.url,
      natsStream: options.nats?.stream,
      natsSubjectPrefix: options.nats?.subjectPrefix,
      maxOpenOrdersPerBuyer: UNLIMITED,
      maxUnpaidUnitsPerBuyerSku: UNLIMITED,
      checkoutRateLimit: UNLIMITED,
      ...options.limits,
      returnUrlHosts: ['shop.example', '127.0.0.1'],
      ...options.config,
    },
    {
      now: clock.now,
      migrate: options.migrate,
      log: options.log ?? pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
      channels: sandbox && channelSettingsForSandbox(sandboxKeys!, sandbox.url),
      // The flash-sale upkeep is run by hand in tests, so its repairs land where the test looks.
      flashSaleUpkeep_ms: 0,
      reconcileInterval_ms: options.reconcileInterval_ms ?? 0,
      // The denylist is reloaded by hand (app.tokens.refresh()), so a test says when another process sees a revocation.
      tokenRevocationRefresh_ms: 0,
      worker: options.worker,
      subscribe: options.subscribe,
      consumerRetry: options.nats?.consumerRetry,
    },
  );
  const http = await buildHttp(app);
  // The platform refuses carts, orders, points and coupons for buyers it has no record of: every
  // buyer a test names by token is registered before the request that first carries the token.
  const named = new Set<number>();
  const registered = new Set<number>();
  // One registration at a time: a burst of a thousand first requests registers its buyers once, not a thousand times.
  let registering: Promise<void> = Promise.resolve();
  http.addHook('onRequest', async () => {
    if ([...named].every((id) => registered.has(id))) return;
    registering = registering.then(async () => {
      const fresh = [...named].filter((id) => !registered.has(id));
      if (fresh.length === 0) return;
      await registerBuyers(app.db, fresh, clock.now());
      for (const id of fresh) registered.add(id);
    });
    await registering;
  });
  if (sandbox) app.payments.publicUrl = await http.listen({ port: 0, host: '127.0.0.1' });
  return {
    app,
    http,
    clock,
    databases,
    buyerToken: (buyerId) => {
      if (Number.isSafeInteger(buyerId) && buyerId > 0) named.add(buyerId);
      return signToken(tokenSecret, { role: 'buyer', subject: String(buyerId) }, clock.now());
    },
    unknownBuyerToken: (buyerId) => signToken(tokenSecret, { role: 'buyer', subject: String(buyerId) }, clock.now()),
    adminToken: () => signToken(tokenSecret, { role: 'admin', subject: 'admin' }, clock.now()),
    token: (principal, { issuedAgo_ms = 0, ttl_s } = {}) => signToken(tokenSecret, principal, clock.now() - issuedAgo_ms, ttl_s),
    sandbox,
    close: async ({ keepDatabases = false } = {}) => {
      await sandbox?.close();
      await http.close();
      await app.close();
      if (!keepDatabases) for (const d of databases) await d.drop();
    },
  };
}

export interface CatalogFixture {
  leaderId: number;
  activityId: number;
  /** activity SKU ids, in the order of the `skus` option */
  activitySkuIds: number[];
}

/** A marketplace merchant's sub-merchant ids, as the channels give them at onboarding (sub_mchid, smid, merId, Mkt_Mrch_Id). */
export function channelAccountsOf(merchantId: number): Record<PayeeChannel, string> {
  const n = String(merchantId).padStart(6, '0');
  return { wechat: `1900${n}`, alipay: `208800000${n.padStart(7, '0')}`, unionpay: `898${n.padStart(12, '0')}`, ccb: `41060${n}` };
}

/** A marketplace merchant onboarded on the given channels (all four unless told). */
export async function onboardMerchant(app: App, name: string, channels: readonly PayeeChannel[] = PAYEE_CHANNELS): Promise<{ id: number }> {
  const now = app.now();
  const merchant = await createMerchant(app.db, { name }, now);
  const accounts = channelAccountsOf(merchant.id);
  await transaction(app.db, async (trx) => {
    for (const channel of channels) await setMerchantChannelAccount(trx, { merchantId: merchant.id, channel, subMerchantId: accounts[channel] }, now);
  });
  return merchant;
}

/** One merchant (onboarded on every channel), one leader, one open activity with the given SKUs. */
export async function seedActivity(
  app: App,
  options: { skus: { price_fen: number; stock: number; purchaseLimit?: number | null; activityPriceUnits?: number | null; listPrice_fen?: number }[]; opensIn_ms?: number; closesIn_ms?: number; inventoryMode?: InventoryMode },
): Promise<CatalogFixture> {
  const now = app.now();
  const merchant = await onboardMerchant(app, 'Test Farm');
  const leader = await createLeader(app.db, { name: 'Leader', community: 'Community', address: 'Gate 1' }, now);
  const product = await createProduct(
    app.db,
    { merchantId: merchant.id, title: 'Apples', category: 'fruit', skus: options.skus.map((s, i) => ({ title: `pack ${i}`, listPrice_fen: s.listPrice_fen ?? 1000, weight_g: 500 })) },
    now,
  );
  const starts = now + (options.opensIn_ms ?? -HOUR_MS);
  const ends = now + (options.closesIn_ms ?? 24 * HOUR_MS);
  const created = await transaction(app.db, async (trx) => {
    const result = await insertActivity(
      trx,
      { title: 'Test group-buy', starts_at_ms: starts, ends_at_ms: ends, order_cutoff_at_ms: ends, pickupDate: '2026-12-01', inventoryMode: options.inventoryMode ?? 'on_order' },
      options.skus.map((s, i) => ({ skuId: product.skus[i]!.id, price_fen: s.price_fen, purchaseLimit: s.purchaseLimit ?? null, activityPriceUnits: s.activityPriceUnits ?? null })),
      now,
    );
    for (const [i, s] of result.skus.entries()) await createStock(trx, s.id, options.skus[i]!.stock, now);
    return result;
  });
  return { leaderId: leader.id, activityId: created.activity.id, activitySkuIds: created.skus.map((s) => s.id) };
}

export interface MerchantFixture {
  leaderId: number;
  activityId: number;
  merchants: { merchantId: number; activitySkuIds: number[] }[];
}

/**
 * One leader and one open activity selling the goods of several merchants (拆单 splits a cart of
 * them): each onboarded on the given channels (all four unless told), or the platform's own (自营).
 */
export async function seedMerchants(
  app: App,
  merchants: { name: string; selfOperated?: boolean; channels?: readonly PayeeChannel[]; skus: { price_fen: number; stock: number }[] }[],
  options: { inventoryMode?: InventoryMode } = {},
): Promise<MerchantFixture> {
  const now = app.now();
  const leader = await createLeader(app.db, { name: 'Leader', community: 'Community', address: 'Gate 2' }, now);
  const made: { merchantId: number; skuIds: number[]; skus: { price_fen: number; stock: number }[] }[] = [];
  for (const m of merchants) {
    const merchant = m.selfOperated ? await createMerchant(app.db, { name: m.name, selfOperated: true }, now) : await onboardMerchant(app, m.name, m.channels);
    const product = await createProduct(app.db, { merchantId: merchant.id, title: `${m.name} goods`, category: 'fruit', skus: m.skus.map((_, i) => ({ title: `pack ${i}`, listPrice_fen: 1000, weight_g: 500 })) }, now);
    made.push({ merchantId: merchant.id, skuIds: product.skus.map((s) => s.id), skus: m.skus });
  }
  const all = made.flatMap((m) => m.skus.map((s, i) => ({ skuId: m.skuIds[i]!, ...s })));
  const created = await transaction(app.db, async (trx) => {
    const result = await insertActivity(
      trx,
      { title: 'Neighbourhood group-buy', starts_at_ms: now - HOUR_MS, ends_at_ms: now + 24 * HOUR_MS, order_cutoff_at_ms: now + 24 * HOUR_MS, pickupDate: '2026-12-01', inventoryMode: options.inventoryMode ?? 'on_order' },
      all.map((s) => ({ skuId: s.skuId, price_fen: s.price_fen, purchaseLimit: null, activityPriceUnits: null })),
      now,
    );
    for (const [i, s] of result.skus.entries()) await createStock(trx, s.id, all[i]!.stock, now);
    return result;
  });
  let next = 0;
  return {
    leaderId: leader.id,
    activityId: created.activity.id,
    merchants: made.map((m) => ({ merchantId: m.merchantId, activitySkuIds: m.skus.map(() => created.skus[next++]!.id) })),
  };
}

/** Registers buyers under the given ids (a repeat is harmless), as the tests name them. */
export async function registerBuyers(db: App['db'], buyerIds: readonly number[], now_ms: number): Promise<void> {
  if (buyerIds.length === 0) return;
  await db
    .insertInto('buyers')
    .values(buyerIds.map((id) => ({ id, name: `Buyer ${id}`, member_level: 0, created_at_ms: now_ms })))
    .$call(ignoreDuplicates(db))
    .execute();
}

let keySequence = 0;
export function newKey(): string {
  keySequence += 1;
  return `key-${process.pid}-${Date.now()}-${keySequence}`;
}

/** Counts rows of the tables a checkout or a payment start writes, across every database that holds them (a fresh order shard has no stock_reservations). */
export async function writtenRows(app: App): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const table of ['checkouts', 'orders', 'order_lines', 'payment_orders', 'idempotency_keys', 'stock_reservations', 'outbox_events', 'jobs', 'purchase_counters'] as const) {
    let n = 0;
    for (const db of (table === 'stock_reservations' ? [app.db] : app.databases) as TestDb[]) {
      const row = await db.selectFrom(table).select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
      n += Number(row.n);
    }
    counts[table] = n;
  }
  return counts;
}

/** A SKU's stock ledger, asserting the invariant every flow test protects: available + reserved + sold = total. */
export async function stockLedger(app: App, activitySkuId: number): Promise<StockLevel> {
  const level = (await stockLevels(app.db, [activitySkuId])).get(activitySkuId)!;
  expect(level.available + level.reserved + level.sold).toBe(level.total);
  return level;
}
