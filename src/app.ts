import { hostname } from 'node:os';
import pino, { type Logger } from 'pino';
import { CART_HOLD_EXPIRE_JOB, expireCartHold, removeOrderedLines } from './cart/index.ts';
import { DEFAULT_COUPON_REFUND_POLICY, returnCoupons, returnCouponsOnRefund, useCoupons } from './coupons/index.ts';
import { returnPointsOnRefund, settlePoints } from './points/index.ts';
import {
  applyToOrder,
  channelSettingsFromEnv,
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
import { EventBus, startRelay } from './events/relay.ts';
import { confirmReservation, releaseReservation, reservationsOf, returnSoldStock } from './inventory/index.ts';
import {
  applyPendingReservations,
  closeFlashSale,
  FLASH_SALE_UPKEEP_INTERVAL_MS,
  gatingActivities,
  openFlashSale,
  releaseFlashSaleReservations,
  startFlashSaleUpkeep,
  ungate,
} from './inventory/flash-sale/index.ts';
import { startJobRunner } from './jobs/index.ts';
import {
  ORDER_CANCELLED,
  ORDER_EXPIRE_JOB,
  ORDER_PAID,
  ORDER_PLACED,
  ORDER_PRICE_PROTECTED,
  ORDER_REFUNDED,
  VERIFY_RESERVATION_JOB,
  expireOrder,
  verifyCheckoutReservation,
  type OrderCancelled,
  type OrderPaid,
} from './orders/index.ts';
import type { OrderPlaced, OrderPriceProtected, OrderRefunded } from './orders/events.ts';
import type { Config } from './platform/config.ts';
import type { Platform } from './platform/context.ts';
import { openDatabase, type Db } from './platform/db/database.ts';
import { migrateToLatest } from './platform/db/migrate.ts';
import { orderNumberGenerator } from './platform/ids.ts';
import type { PollingLoop } from './platform/polling-loop.ts';
import { orderShards } from './platform/shards.ts';

export interface App extends Platform {
  config: Config;
  /** Every distinct database: the main one and the order shards. */
  databases: Db[];
  bus: EventBus;
  relay: PollingLoop;
  jobs: PollingLoop;
  payments: PaymentCentre;
  /** Runs the relay and due jobs until neither finds work (tests, shutdown). */
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
}

export async function createApp(config: Config, options: AppOptions = {}): Promise<App> {
  const log = options.log ?? pino({ level: process.env.LOG_LEVEL ?? 'info' });
  const byUrl = new Map<string, Db>();
  for (const url of [config.databaseUrl, ...config.orderShardUrls]) {
    if (!byUrl.has(url)) byUrl.set(url, await openDatabase(url));
  }
  const db = byUrl.get(config.databaseUrl)!;
  const shards = orderShards(config.orderShardUrls.map((url) => byUrl.get(url)!));
  const databases = [...byUrl.values()];
  if (options.migrate ?? true) for (const each of databases) await migrateToLatest(each);

  const now = options.now ?? Date.now;
  const owner = `${hostname()}:${process.pid}:${Math.random().toString(36).slice(2, 8)}`;
  const bus = new EventBus();
  const onError = (error: unknown) => log.warn({ err: error }, 'background work failed; it will be retried');

  let relay: PollingLoop | undefined;
  let jobs: PollingLoop | undefined;
  const platform: Platform = {
    db,
    shards,
    now,
    nextOrderNo: orderNumberGenerator(config.nodeId),
    paymentTimeout_ms: config.paymentTimeout_ms,
    // Commits wake the relay; new jobs are due minutes ahead, so the job runner's own polling finds them.
    wake: () => relay?.kick(),
    log,
    flashSale: config.redisUrl ? openFlashSale(config.redisUrl, config.redisKeyPrefix, log) : undefined,
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

  const payments: PaymentCentre = {
    p: platform,
    channels: createChannels(options.channels ?? channelSettingsFromEnv(process.env), now),
    publicUrl: config.publicUrl ?? `http://${config.host}:${config.port}`,
    couponRefundPolicy: DEFAULT_COUPON_REFUND_POLICY,
  };

  subscribeDomainHandlers(bus, platform);
  subscribePaymentHandlers(bus, payments);
  relay = startRelay({ databases, bus, owner, now, onError });
  jobs = startJobRunner({
    databases,
    owner,
    now,
    onError,
    handlers: {
      [ORDER_EXPIRE_JOB]: async (payload: { orderNo: string }) => void (await expireOrder(platform, payload.orderNo)),
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
    },
  });

  const app: App = {
    ...platform,
    config,
    databases,
    bus,
    relay,
    jobs,
    payments,
    drain: async () => {
      // Quiet means a whole round in which no pass of either loop, background or ours, did anything.
      for (let round = 0; round < 100; round++) {
        const before = relay.workDone() + jobs.workDone();
        await relay.drain();
        await jobs.drain();
        if (relay.workDone() + jobs.workDone() === before) return;
      }
      throw new Error('background work did not settle');
    },
    close: async () => {
      await flashSaleUpkeep?.stop();
      await relay.stop();
      await jobs.stop();
      if (platform.flashSale) await closeFlashSale(platform.flashSale);
      for (const each of databases) await each.destroy();
    },
  };
  return app;
}

/** Who reacts to which order event. Every handler is idempotent: delivery is at least once. */
function subscribeDomainHandlers(bus: EventBus, p: Platform): void {
  bus.subscribe(ORDER_PLACED, 'cart.remove-ordered-lines', async (e: DomainEvent<OrderPlaced>) => {
    await removeOrderedLines(p.db, e.payload.buyerId, e.payload.lines.map((l) => l.activitySkuId), e.payload.placed_at_ms);
  });
  // 秒杀: the order exists, so the units Redis granted it move in the stock row (the database catching up).
  bus.subscribe(ORDER_PLACED, 'inventory.apply-flash-sale-reservations', async (e: DomainEvent<OrderPlaced>) => {
    await applyPendingReservations(p.db, e.payload.orderNo, p.now());
  });
  bus.subscribe(ORDER_PAID, 'inventory.confirm-reservation', async (e: DomainEvent<OrderPaid>) => {
    const moved = await confirmReservation(p.db, e.payload.orderNo, p.now());
    if (moved === 0 && !(await reservationsOf(p.db, e.payload.orderNo)).some((r) => r.state === 'confirmed')) {
      // Paid, but no stock stands behind it: the reconciler and a person must look.
      p.log.error({ orderNo: e.payload.orderNo }, 'paid order has no reserved stock to confirm');
    }
  });
  bus.subscribe(ORDER_PAID, 'coupons.use', async (e: DomainEvent<OrderPaid>) => {
    await useCoupons(p.db, e.payload.orderNo, p.now());
  });
  bus.subscribe(ORDER_PAID, 'points.deduct', async (e: DomainEvent<OrderPaid>) => {
    await settlePoints(p.db, e.payload.orderNo, 'deduct', p.now());
  });
  bus.subscribe(ORDER_CANCELLED, 'inventory.release-reservation', async (e: DomainEvent<OrderCancelled>) => {
    // Redis gives a flash sale's units back first; while it is out of reach this fails and the event is retried.
    if (p.flashSale) await releaseFlashSaleReservations(p.flashSale, p.db, e.payload.orderNo);
    await releaseReservation(p.db, e.payload.orderNo, p.now());
    // Units a payment deducted (on-payment lines) for an order that ended cancelled go back too.
    await returnSoldStock(p.db, e.payload.orderNo, 'all', p.now());
  });
  bus.subscribe(ORDER_CANCELLED, 'coupons.return', async (e: DomainEvent<OrderCancelled>) => {
    await returnCoupons(p.db, e.payload.orderNo, p.now());
  });
  bus.subscribe(ORDER_CANCELLED, 'points.unfreeze', async (e: DomainEvent<OrderCancelled>) => {
    await settlePoints(p.db, e.payload.orderNo, 'unfreeze', p.now());
  });
}

/** The payment centre's side of order events: refunds' effects, and 价保 payouts. */
function subscribePaymentHandlers(bus: EventBus, pc: PaymentCentre): void {
  const { p } = pc;
  // 退款: the refunded lines' units go back to the activity (nothing is picked up before
  // fulfilment exists, so every paid line is still with the platform).
  bus.subscribe(ORDER_REFUNDED, 'inventory.return-refunded-stock', async (e: DomainEvent<OrderRefunded>) => {
    await returnSoldStock(p.db, e.payload.orderNo, e.payload.lines.map((l) => l.activitySkuId), p.now());
  });
  bus.subscribe(ORDER_REFUNDED, 'coupons.return-on-refund', async (e: DomainEvent<OrderRefunded>) => {
    await returnCouponsOnRefund(p.db, e.payload.orderNo, e.payload.fullyRefunded, pc.couponRefundPolicy, p.now());
  });
  bus.subscribe(ORDER_REFUNDED, 'points.return-on-refund', async (e: DomainEvent<OrderRefunded>) => {
    const { orderNo, refundNo, refundedLinesPayable_fen, payable_fen } = e.payload;
    if (payable_fen > 0) await returnPointsOnRefund(p.db, orderNo, refundNo, Math.min(refundedLinesPayable_fen, payable_fen), payable_fen, p.now());
  });
  bus.subscribe(ORDER_PRICE_PROTECTED, 'payments.price-protection-payout', async (e: DomainEvent<OrderPriceProtected>) => {
    await payPriceProtection(pc, e.payload);
  });
}
