import { hostname } from 'node:os';
import pino, { type Logger } from 'pino';
import { CART_HOLD_EXPIRE_JOB, expireCartHold, removeOrderedLines } from './cart/index.ts';
import { returnCoupons, useCoupons } from './coupons/index.ts';
import { settlePoints } from './points/index.ts';
import type { DomainEvent } from './events/outbox.ts';
import { EventBus, startRelay } from './events/relay.ts';
import { confirmReservation, releaseReservation, reservationsOf, returnSoldStock } from './inventory/index.ts';
import { startJobRunner } from './jobs/index.ts';
import {
  ORDER_CANCELLED,
  ORDER_EXPIRE_JOB,
  ORDER_PAID,
  ORDER_PLACED,
  VERIFY_RESERVATION_JOB,
  expireOrder,
  verifyCheckoutReservation,
  type OrderCancelled,
  type OrderPaid,
} from './orders/index.ts';
import type { OrderPlaced } from './orders/events.ts';
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
  /** Runs the relay and due jobs until neither finds work (tests, shutdown). */
  drain(): Promise<void>;
  close(): Promise<void>;
}

export interface AppOptions {
  now?: () => number;
  log?: Logger;
  migrate?: boolean;
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
  };

  subscribeDomainHandlers(bus, platform);
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
      await relay.stop();
      await jobs.stop();
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
