import { hostname } from 'node:os';
import pino, { type Logger } from 'pino';
import { startTokenGate, type TokenGate } from './access/index.ts';
import { CART_HOLD_EXPIRE_JOB, expireCartHold, removeOrderedLines } from './cart/index.ts';
import { DEFAULT_COUPON_REFUND_POLICY, returnCoupons, returnCouponsOnRefund, useCoupons } from './coupons/index.ts';
import { returnPointsOnRefund, settlePoints } from './points/index.ts';
import {
  ChannelBreakers,
  DEFAULT_BREAKER_SETTINGS,
  applyToOrder,
  channelSettingsFromEnv,
  closeOpenAttempts,
  createChannels,
  followPayment,
  followRefund,
  PAYMENT_APPLY_JOB,
  PAYMENT_QUERY_JOB,
  payPriceProtection,
  REFUND_FOLLOW_JOB,
  type ChannelSettings,
  type PaymentCentre,
} from './payments/index.ts';
import type { DomainEvent } from './events/outbox.ts';
import { EventBus, inTransaction } from './events/relay.ts';
import type { ConsumerRetry } from './events/broker.ts';
import { brokerSettings, startEventTransport, type EventTransport } from './events/transport.ts';
import { confirmReservation, releaseReservation, reservationsOf, returnSoldStock } from './inventory/index.ts';
import {
  applyPendingReservations,
  closeFlashSale,
  FLASH_SALE_UPKEEP_INTERVAL_MS,
  gatingActivities,
  openFlashSale,
  releaseFlashSaleReservations,
  returnFlashSaleStock,
  startFlashSaleUpkeep,
  ungate,
} from './inventory/flash-sale/index.ts';
import { startJobRunner } from './jobs/index.ts';
import { VERIFY_RESERVATION_JOB, verifyCheckoutReservation } from './checkout/index.ts';
import { reconcileJobHandler, RECONCILE_INTERVAL_MS, RECONCILE_JOB, scheduleFirstPass } from './consistency/index.ts';
import {
  ORDER_CANCELLED,
  ORDER_EXPIRE_JOB,
  ORDER_PAID,
  ORDER_PAY_WITHOUT_CHANNEL_JOB,
  ORDER_PLACED,
  ORDER_PRICE_PROTECTED,
  ORDER_REFUNDED,
  expireOrder,
  MAX_OPEN_ORDERS_PER_BUYER,
  MAX_UNPAID_UNITS_PER_BUYER_SKU,
  payWithoutChannel,
  type OrderCancelled,
  type OrderPaid,
} from './orders/index.ts';
import type { OrderPlaced, OrderPriceProtected, OrderRefunded } from './orders/events.ts';
import type { Config } from './platform/config.ts';
import type { Platform } from './platform/context.ts';
import { openDatabase, type AnyDb } from './platform/db/database.ts';
import { migrateToLatest } from './platform/db/migrate.ts';
import { checkTokenSecret } from './platform/http/tokens.ts';
import { orderNumberGenerator } from './platform/ids.ts';
import { createMetrics, type Metrics } from './platform/metrics.ts';
import type { PollingLoop } from './platform/polling-loop.ts';
import { orderShards } from './platform/shards.ts';
import type { FlashSale } from './inventory/index.ts';
import type { MainDb, MainTables, ShardDb, ShardTables } from './tables.ts';

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
  if (options.migrate ?? true) for (const each of databases) await migrateToLatest(each);

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
  if (!platform.flashSale) {
    for (const activityId of await gatingActivities(db)) {
      await ungate(db, activityId, now());
      log.warn({ activityId }, 'flash sale: REDIS_URL is not set; the database takes back the stock Redis was serving');
    }
  }
  const upkeep_ms = options.flashSaleUpkeep_ms ?? FLASH_SALE_UPKEEP_INTERVAL_MS;
  const flashSaleUpkeep = platform.flashSale && upkeep_ms > 0 ? startFlashSaleUpkeep(platform.flashSale, db, now, upkeep_ms, onError) : undefined;

  const channels = createChannels(options.channels ?? channelSettingsFromEnv(process.env), now);
  const payments: PaymentCentre = {
    p: platform,
    channels,
    breakers: new ChannelBreakers(channels.keys(), { ...DEFAULT_BREAKER_SETTINGS, ...config.channelBreaker }),
    publicUrl: config.publicUrl ?? `http://${config.host}:${config.port}`,
    couponRefundPolicy: DEFAULT_COUPON_REFUND_POLICY,
  };

  const tokens = await startTokenGate({
    db,
    secrets: [config.tokenSecret, ...(config.previousTokenSecrets ?? [])],
    now,
    refresh_ms: options.tokenRevocationRefresh_ms,
    onError,
  });
  const metrics = createMetrics({ databases, now });
  const reconcile_ms = options.reconcileInterval_ms ?? RECONCILE_INTERVAL_MS;

  subscribeDomainHandlers(bus, platform);
  subscribePaymentHandlers(bus, payments);
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
    handlers: {
      [ORDER_EXPIRE_JOB]: async (payload: { orderNo: string }) => void (await expireOrder(platform, payload.orderNo)),
      [ORDER_PAY_WITHOUT_CHANNEL_JOB]: async (payload: { orderNo: string }) => void (await payWithoutChannel(platform, payload.orderNo)),
      [CART_HOLD_EXPIRE_JOB]: async (payload: { buyerId: number; activitySkuId: number; expires_at_ms: number }) => {
        await expireCartHold(db, payload, now());
      },
      [PAYMENT_QUERY_JOB]: (payload: { payNo: string; attempt: number }) => followPayment(payments, payload),
      [PAYMENT_APPLY_JOB]: async (payload: { payNo: string }) => void (await applyToOrder(payments, payload.payNo)),
      [REFUND_FOLLOW_JOB]: (payload: { payNo: string; refundNo: string; attempt: number }) => followRefund(payments, payload),
      [VERIFY_RESERVATION_JOB]: async (payload: { orderNo: string }) => {
        if ((await verifyCheckoutReservation(platform, payload.orderNo)) === 'released') {
          log.warn({ orderNo: payload.orderNo }, 'released the stock of a checkout that never wrote its order');
        }
      },
      [RECONCILE_JOB]: reconcileJobHandler(platform, payments, reconcile_ms || RECONCILE_INTERVAL_MS, {
        onRepair: (check) => metrics.repairs.inc({ check }),
        onFailure: (check) => metrics.repairFailures.inc({ check }),
      }),
    },
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
      throw new Error('background work did not settle');
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
  subscribeDomainHandlers(bus, nothing);
  subscribePaymentHandlers(bus, { p: nothing } as PaymentCentre);
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
 * Who reacts to which order event. Delivery is at least once; a consumer whose effect is rows in
 * the main database runs in one transaction with its inbox row (inTransaction), so it applies once;
 * the others (Redis, payment channels) are idempotent by themselves and recorded after.
 */
function subscribeDomainHandlers(bus: EventBus, p: AppPlatform): void {
  bus.subscribe(ORDER_PLACED, 'cart.remove-ordered-lines', inTransaction(p.db, async (trx, e: DomainEvent<OrderPlaced>) => {
    await removeOrderedLines(trx, e.payload.buyerId, e.payload.lines.map((l) => l.activitySkuId), e.payload.placed_at_ms);
  }));
  // 秒杀: the order exists, so the units Redis granted it move in the stock row (the database catching up).
  bus.subscribe(ORDER_PLACED, 'inventory.apply-flash-sale-reservations', inTransaction(p.db, async (trx, e: DomainEvent<OrderPlaced>) => {
    await applyPendingReservations(trx, e.payload.orderNo, p.now());
  }));
  bus.subscribe(ORDER_PAID, 'inventory.confirm-reservation', inTransaction(p.db, async (trx, e: DomainEvent<OrderPaid>) => {
    const moved = await confirmReservation(trx, e.payload.orderNo, p.now());
    // Confirmed already, or confirmed and given back by a refund that ran first: units stand behind the order.
    if (moved === 0 && !(await reservationsOf(trx, e.payload.orderNo)).some((r) => r.state === 'confirmed' || r.state === 'returned' || r.state === 'returning')) {
      // Paid, but no stock stands behind it: the reconciler and a person must look.
      p.log.error({ orderNo: e.payload.orderNo }, 'paid order has no reserved stock to confirm');
    }
  }));
  bus.subscribe(ORDER_PAID, 'coupons.use', inTransaction(p.db, async (trx, e: DomainEvent<OrderPaid>) => {
    await useCoupons(trx, e.payload.orderNo, p.now());
  }));
  bus.subscribe(ORDER_PAID, 'points.deduct', inTransaction(p.db, async (trx, e: DomainEvent<OrderPaid>) => {
    await settlePoints(trx, e.payload.orderNo, 'deduct', p.now());
  }));
  // Not in one transaction with its inbox row: it calls Redis first. Each step checks the state it changes.
  bus.subscribe(ORDER_CANCELLED, 'inventory.release-reservation', async (e: DomainEvent<OrderCancelled>) => {
    // Redis gives a flash sale's units back first; while it is out of reach this fails and the event is retried.
    if (p.flashSale) await releaseFlashSaleReservations(p.flashSale, p.db, e.payload.orderNo);
    await releaseReservation(p.db, e.payload.orderNo, p.now());
    // Units a payment deducted (on-payment lines) for an order that ended cancelled go back too.
    await returnSoldStock(p.db, e.payload.orderNo, 'all', p.now());
    if (p.flashSale) await returnFlashSaleStock(p.flashSale, p.db, e.payload.orderNo, p.now());
  });
  bus.subscribe(ORDER_CANCELLED, 'coupons.return', inTransaction(p.db, async (trx, e: DomainEvent<OrderCancelled>) => {
    await returnCoupons(trx, e.payload.orderNo, p.now());
  }));
  bus.subscribe(ORDER_CANCELLED, 'points.unfreeze', inTransaction(p.db, async (trx, e: DomainEvent<OrderCancelled>) => {
    await settlePoints(trx, e.payload.orderNo, 'unfreeze', p.now());
  }));
}

/** The payment centre's side of order events: refunds' effects, and 价保 payouts. */
function subscribePaymentHandlers(bus: EventBus, pc: PaymentCentre): void {
  const { p } = pc;
  // 退款: the refunded lines' units go back to the activity (nothing is picked up before
  // fulfilment exists, so every paid line is still with the platform).
  // Not in one transaction with its inbox row: a SKU Redis serves (秒杀) gets the units in Redis
  // after the database commits them. Each step checks the state it changes, so a repeat is a no-op.
  bus.subscribe(ORDER_REFUNDED, 'inventory.return-refunded-stock', async (e: DomainEvent<OrderRefunded>) => {
    // Consumers are not ordered across event types (a backlog, a retry, a broker's subjects): the
    // refund may come before order.paid's confirmation. Confirming is what payment does anyway
    // (idempotent), so confirm first and every refunded unit is found and given back.
    await confirmReservation(p.db, e.payload.orderNo, p.now());
    await returnSoldStock(p.db, e.payload.orderNo, e.payload.lines.map((l) => l.activitySkuId), p.now());
    if (p.flashSale) await returnFlashSaleStock(p.flashSale, p.db, e.payload.orderNo, p.now());
  });
  bus.subscribe(ORDER_REFUNDED, 'coupons.return-on-refund', inTransaction(p.db, async (trx, e: DomainEvent<OrderRefunded>) => {
    await returnCouponsOnRefund(trx, e.payload.orderNo, e.payload.fullyRefunded, pc.couponRefundPolicy, p.now());
  }));
  bus.subscribe(ORDER_REFUNDED, 'points.return-on-refund', inTransaction(p.db, async (trx, e: DomainEvent<OrderRefunded>) => {
    const { orderNo, refundNo, refundedLinesPayable_fen, payable_fen } = e.payload;
    if (payable_fen > 0) await returnPointsOnRefund(trx, orderNo, refundNo, Math.min(refundedLinesPayable_fen, payable_fen), payable_fen, p.now());
  }));
  // 超时取消 or cancel: the open channel trades are closed, so a late payment cannot succeed silently
  // (one that did is refunded). Outside a transaction: it calls the channels; a repeat finds them closed.
  bus.subscribe(ORDER_CANCELLED, 'payments.close-open-attempts', async (e: DomainEvent<OrderCancelled>) => {
    await closeOpenAttempts(pc, e.payload.orderNo);
  });
  // Outside a transaction: it calls the payment channel. The refund number comes from the order line, so a repeat finds the same refund.
  bus.subscribe(ORDER_PRICE_PROTECTED, 'payments.price-protection-payout', async (e: DomainEvent<OrderPriceProtected>) => {
    await payPriceProtection(pc, e.payload);
  });
}
