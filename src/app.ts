import { hostname } from 'node:os';
import pino, { type Logger } from 'pino';
import { startTokenGate, type TokenGate } from './access/index.ts';
import { merchantPayees } from './catalog/index.ts';
import { cartJobs, subscribeCart } from './cart/handlers.ts';
import { checkoutJobs } from './checkout/handlers.ts';
import { consistencyJobs } from './consistency/handlers.ts';
import { RECONCILE_INTERVAL_MS, scheduleFirstPass } from './consistency/index.ts';
import { DEFAULT_COUPON_REFUND_POLICY } from './coupons/index.ts';
import { subscribeCoupons } from './coupons/handlers.ts';
import { deadLetterCount, deadOutboxEventCount, oldestUndeliveredEvent_ms } from './events/index.ts';
import { EventBus } from './events/relay.ts';
import type { ConsumerRetry } from './events/broker.ts';
import { brokerSettings, startEventTransport, type EventTransport } from './events/transport.ts';
import { subscribeInventory } from './inventory/handlers.ts';
import { closeFlashSale, FLASH_SALE_UPKEEP_INTERVAL_MS, openFlashSale, startFlashSaleUpkeep, takeBackGatedStock } from './inventory/flash-sale/index.ts';
import { deadJobCount, jobHandlersOf, oldestDueJob_ms, startJobRunner } from './jobs/index.ts';
import { ordersJobs } from './orders/handlers.ts';
import { MAX_OPEN_ORDERS_PER_BUYER, MAX_UNPAID_UNITS_PER_BUYER_SKU } from './orders/index.ts';
import { ChannelBreakers, DEFAULT_BREAKER_SETTINGS, channelSettingsFromEnv, createChannels, type ChannelSettings, type PaymentCentre } from './payments/index.ts';
import { paymentsJobs, subscribePayments } from './payments/handlers.ts';
import { subscribePoints } from './points/handlers.ts';
import type { Config } from './platform/config.ts';
import type { Platform } from './platform/context.ts';
import { openDatabase, type AnyDb } from './platform/db/database.ts';
import { checkTokenSecret } from './platform/http/tokens.ts';
import { orderNumberGenerator } from './platform/ids.ts';
import { createMetrics, type Metrics } from './platform/metrics.ts';
import type { PollingLoop } from './platform/polling-loop.ts';
import { orderShards } from './platform/shards.ts';
import type { FlashSale } from './inventory/index.ts';
import type { MainDb, MainTables, ShardDb, ShardTables } from './tables.ts';
import { migrateDatabases } from './migrations.ts';

/** The platform every module's deps are cut from: the main database and the order shards, typed with all their tables. */
export interface AppPlatform extends Platform<MainTables, ShardTables> {
  flashSale?: FlashSale | undefined;
}

export interface App extends AppPlatform {
  config: Config;
  /** Every distinct database: the main one and the order shards. */
  databases: AnyDb[];
  bus: EventBus;
  relay: PollingLoop;
  jobs: PollingLoop;
  payments: PaymentCentre;
  /** Who a bearer token speaks for, and the denylist of revoked ones. */
  tokens: TokenGate;
  /** Prometheus metrics of this app (a registry of its own). */
  metrics: Metrics;
  /** With Redis (REDIS_URL), rate-limit counts live there, so every API process counts together. */
  rateLimitStore?: { redis: unknown; nameSpace: string } | undefined;
  /** Runs the relay and due jobs until neither finds work and no consumer has an event in hand (tests, shutdown). */
  drain(): Promise<void>;
  close(): Promise<void>;
}

export interface AppOptions {
  now?: () => number;
  log?: Logger;
  migrate?: boolean;
  /** How often the flash-sale upkeep (load, unload, reconcile) runs; 0 turns it off (tests run it by hand). */
  flashSaleUpkeep_ms?: number;
  /** The payment channels; by default those configured by environment variables. */
  channels?: ChannelSettings;
  /**
   * Run the background work here: the event relay, the consumers and the jobs (default true,
   * so one process does everything). false: the API only, with `tuangou worker` processes beside it.
   */
  worker?: boolean;
  /** Extra consumers (tests), subscribed before the consumers start. */
  subscribe?: (bus: EventBus) => void;
  /** With a broker: a failing consumer's redelivery backoff. */
  consumerRetry?: ConsumerRetry;
  /**
   * How often the consistency reconciler runs a pass (default RECONCILE_INTERVAL_MS); 0: this
   * process does not start the chain of passes (tests run passes by hand), though it still runs one it finds.
   */
  reconcileInterval_ms?: number;
  /** How often the token denylist is reloaded (default TOKEN_REVOCATION_REFRESH_MS). */
  tokenRevocationRefresh_ms?: number;
}

export async function createApp(config: Config, options: AppOptions = {}): Promise<App> {
  for (const secret of [config.tokenSecret, ...(config.previousTokenSecrets ?? [])]) checkTokenSecret(secret);
  const log = options.log ?? pino({ level: process.env.LOG_LEVEL ?? 'info' });
  const byUrl = new Map<string, AnyDb>();
  for (const url of [config.databaseUrl, ...config.orderShardUrls]) {
    if (!byUrl.has(url)) byUrl.set(url, await openDatabase(url));
  }
  const db: MainDb = byUrl.get(config.databaseUrl)!;
  const shards = orderShards<ShardTables>(config.orderShardUrls.map((url): ShardDb => byUrl.get(url)!));
  const databases = [...byUrl.values()];
  if (options.migrate ?? true) await migrateDatabases(db, shards.databases);

  const now = options.now ?? Date.now;
  const owner = `${hostname()}:${process.pid}:${Math.random().toString(36).slice(2, 8)}`;
  const bus = new EventBus(db);
  const onError = (error: unknown) => log.warn({ err: error }, 'background work failed; it will be retried');

  let relay: PollingLoop | undefined;
  let jobs: PollingLoop | undefined;
  const platform: AppPlatform = {
    db,
    shards,
    now,
    nextOrderNo: orderNumberGenerator(config.nodeId),
    paymentTimeout_ms: config.paymentTimeout_ms,
    // Commits wake the relay; new jobs are due minutes ahead, so the job runner's own polling finds them.
    wake: () => relay?.kick(),
    log,
    flashSale: config.redisUrl ? openFlashSale(config.redisUrl, config.redisKeyPrefix, log) : undefined,
    buyerLimits: {
      maxOpenOrders: config.maxOpenOrdersPerBuyer ?? MAX_OPEN_ORDERS_PER_BUYER,
      maxUnpaidUnitsPerSku: config.maxUnpaidUnitsPerBuyerSku ?? MAX_UNPAID_UNITS_PER_BUYER_SKU,
    },
  };
  // Without Redis the database serves every activity: stock a Redis gate held is taken back.
  if (!platform.flashSale) await takeBackGatedStock(db, now(), log);
  const upkeep_ms = options.flashSaleUpkeep_ms ?? FLASH_SALE_UPKEEP_INTERVAL_MS;
  const flashSaleUpkeep = platform.flashSale && upkeep_ms > 0 ? startFlashSaleUpkeep(platform.flashSale, db, now, upkeep_ms, onError) : undefined;

  const channels = createChannels(options.channels ?? channelSettingsFromEnv(process.env), now);
  const payments: PaymentCentre = {
    platform,
    channels,
    breakers: new ChannelBreakers(channels.keys(), { ...DEFAULT_BREAKER_SETTINGS, ...config.channelBreaker }),
    publicUrl: config.publicUrl ?? `http://${config.host}:${config.port}`,
    couponRefundPolicy: DEFAULT_COUPON_REFUND_POLICY,
    payees: (merchantIds) => merchantPayees(db, merchantIds),
  };

  const tokens = await startTokenGate({
    db,
    secrets: [config.tokenSecret, ...(config.previousTokenSecrets ?? [])],
    now,
    refresh_ms: options.tokenRevocationRefresh_ms,
    onError,
  });
  const metrics = createMetrics({
    now,
    oldestDueJob_ms: (now_ms) => oldestDueJob_ms(databases, now_ms),
    oldestUndeliveredEvent_ms: () => oldestUndeliveredEvent_ms(databases),
    deadLetters: { jobs: () => deadJobCount(databases), outbox: () => deadOutboxEventCount(databases), consumers: () => deadLetterCount(databases) },
  });
  const reconcile_ms = options.reconcileInterval_ms ?? RECONCILE_INTERVAL_MS;

  subscribeModules(bus, platform, payments);
  options.subscribe?.(bus);
  const runsWorker = options.worker ?? true;
  const transport: EventTransport = runsWorker
    ? await startEventTransport({ broker: brokerSettings(config), databases, bus, owner, now, onError, consumerRetry: options.consumerRetry })
    : { relay: stoppedLoop(), idle: async () => true, stop: async () => undefined };
  relay = transport.relay;
  jobs = !runsWorker ? stoppedLoop() : startJobRunner({
    databases,
    owner,
    now,
    onError,
    handlers: jobHandlersOf(
      ordersJobs(platform),
      checkoutJobs(platform),
      cartJobs(platform),
      paymentsJobs(payments),
      consistencyJobs({
        platform,
        payments,
        interval_ms: reconcile_ms || RECONCILE_INTERVAL_MS,
        hooks: { onRepair: (check) => metrics.repairs.inc({ check }), onFailure: (check) => metrics.repairFailures.inc({ check }) },
      }),
    ),
  });

  // The first pass schedules itself; each pass schedules the next (see consistency/pass.ts).
  if (reconcile_ms > 0) await scheduleFirstPass(platform, reconcile_ms);

  const app: App = {
    ...platform,
    config,
    databases,
    bus,
    relay,
    jobs,
    payments,
    tokens,
    metrics,
    rateLimitStore: platform.flashSale && { redis: platform.flashSale.redis, nameSpace: `${platform.flashSale.keyPrefix}rate-limit:` },
    drain: async () => {
      // Quiet means a whole round in which no pass of either loop, background or ours, did anything.
      for (let round = 0; round < MAX_DRAIN_ROUNDS; round++) {
        const before = relay.workDone() + jobs.workDone();
        await relay.drain();
        await jobs.drain();
        // With a broker the consumers work apart from the relay: wait for them to empty too.
        const idle = await transport.idle();
        if (idle && relay.workDone() + jobs.workDone() === before) return;
        if (!idle) await new Promise((resolve) => setTimeout(resolve, DRAIN_WAIT_MS));
      }
      throw new Error('background work did not go quiet');
    },
    close: async () => {
      await tokens.stop();
      await flashSaleUpkeep?.stop();
      await transport.stop();
      await jobs.stop();
      if (platform.flashSale) await closeFlashSale(platform.flashSale);
      for (const each of databases) await each.destroy();
    },
  };
  return app;
}

/**
 * The consumers' names and event types, without an app (`tuangou migrate` creates their durable
 * consumers on the broker). The handlers are only registered here, never run, so no platform is needed.
 */
export function eventConsumerNames(): { name: string; type: string }[] {
  const nothing = {} as AppPlatform;
  const bus = new EventBus(nothing.db);
  subscribeModules(bus, nothing, { platform: nothing } as PaymentCentre);
  return bus.consumers().map(({ name, type }) => ({ name, type }));
}

/** Rounds of app.drain(); with a broker, a round waits DRAIN_WAIT_MS for the consumers. */
const MAX_DRAIN_ROUNDS = 3000;
const DRAIN_WAIT_MS = 20;

/** A loop that never runs: the background work happens in `tuangou worker` processes. */
function stoppedLoop(): PollingLoop {
  return { kick: () => undefined, drain: async () => 0, workDone: () => 0, stop: async () => undefined };
}

/**
 * Each module subscribes its own consumers. The order matters only within one event type (the
 * in-process bus runs an event's consumers in the order they were subscribed), and is the order
 * they have always run in: cart, inventory, coupons, points, then the payment centre.
 */
function subscribeModules(bus: EventBus, platform: AppPlatform, payments: PaymentCentre): void {
  subscribeCart(bus, platform);
  subscribeInventory(bus, platform);
  subscribeCoupons(bus, { db: platform.db, now: platform.now, couponRefundPolicy: payments.couponRefundPolicy });
  subscribePoints(bus, platform);
  subscribePayments(bus, payments);
}
