import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Kysely } from 'kysely';
import type { App } from '../../src/app.ts';
import { inTransaction, type EventBus } from '../../src/events/relay.ts';
import type { TestDb as Db } from './db.ts';
import { getOrder, ORDER_PAID, ORDER_PLACED, paymentSucceeded } from '../../src/orders/index.ts';
import { expect } from 'vitest';
import { asBuyer } from './client.ts';
import { outboxCount } from './quiet.ts';
import { stockLedger, type Harness } from './harness.ts';

/**
 * Test consumers whose effect is a row in `test_effects` written in the consumer's transaction:
 * the rows per (consumer, event) count how often the effect really happened (an effect rolled
 * back leaves none), which the domain's own idempotent effects cannot show.
 */
export async function createEffectsTable(db: Db): Promise<void> {
  await (db as Kysely<any>).schema
    .createTable('test_effects')
    .ifNotExists()
    .addColumn('consumer', 'varchar(64)', (c) => c.notNull())
    .addColumn('event_id', 'varchar(36)', (c) => c.notNull())
    .addColumn('aggregate_id', 'varchar(64)', (c) => c.notNull())
    .execute();
}

export function subscribeCounters(bus: EventBus, types: readonly string[], fail?: (consumer: string, aggregateId: string) => boolean): void {
  for (const type of types) {
    const name = `test.count.${type}`;
    bus.subscribe(type, name, inTransaction(bus.db, async (trx, e) => {
      await (trx as unknown as Kysely<any>).insertInto('test_effects').values({ consumer: name, event_id: e.eventId, aggregate_id: e.aggregateId }).execute();
      // Failing after the write proves the write is rolled back with the inbox row.
      if (fail?.(name, e.aggregateId)) throw new Error(`test consumer ${name} fails on ${e.aggregateId}`);
    }));
  }
}

/** Effects per consumer and event: every value must be 1. */
export async function effectCounts(app: App): Promise<Map<string, number>> {
  const rows = await (app.db as Kysely<any>).selectFrom('test_effects').select(['consumer', 'event_id']).execute();
  const counts = new Map<string, number>();
  for (const r of rows) counts.set(`${r.consumer} ${r.event_id}`, (counts.get(`${r.consumer} ${r.event_id}`) ?? 0) + 1);
  return counts;
}

export async function effectAggregates(app: App, consumer: string): Promise<string[]> {
  const rows = await (app.db as Kysely<any>).selectFrom('test_effects').select('aggregate_id').where('consumer', '=', consumer).execute();
  return rows.map((r) => r.aggregate_id as string).sort();
}

export { outboxCount } from './quiet.ts';

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

async function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tcpConnect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** A nats-server of the test's own (its own port and store), so the test can stop and start it. */
export interface PrivateNats {
  url: string;
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stops it and removes its store. */
  destroy(): Promise<void>;
}

export async function startPrivateNats(binary = process.env.NATS_SERVER_BIN ?? '/usr/sbin/nats-server'): Promise<PrivateNats> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'tuangou-nats-'));
  let child: ChildProcess | undefined;
  const start = async () => {
    child = spawn(binary, ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', dir], { stdio: 'ignore' });
    for (let i = 0; i < 200; i++) {
      if (await listening(port)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error('private nats-server did not come up');
  };
  const stop = async () => {
    const running = child;
    child = undefined;
    if (!running || running.exitCode !== null) return;
    const exited = new Promise((r) => running.once('exit', r));
    running.kill('SIGKILL'); // a crash, not a clean shutdown
    await exited;
  };
  await start();
  return {
    url: `nats://127.0.0.1:${port}`,
    start,
    stop,
    destroy: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function waitFor(what: string, check: () => Promise<boolean>, timeout_ms = 60_000): Promise<void> {
  const deadline = Date.now() + timeout_ms;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** A buyer puts one unit in the cart and checks it out; paid too when `pay`. Returns the order number (of the checkout's one order: one merchant). */
export async function cartCheckout(h: Harness, leaderId: number, activitySkuId: number, buyerId: number, pay: boolean): Promise<string> {
  const buyer = asBuyer(h, buyerId);
  const added = await buyer.cart.add(activitySkuId, 1);
  if (added.status !== 200) throw new Error(`add to cart: ${added.status} ${JSON.stringify(added.body)}`);
  const placed = await buyer.checkout({ leaderId, items: [{ activitySkuId, quantity: 1 }] });
  if (placed.status !== 201) throw new Error(`checkout: ${placed.status} ${JSON.stringify(placed.body)}`);
  if (placed.body.orders.length !== 1) throw new Error(`checkout of one merchant split into ${placed.body.orders.length} orders`);
  const order = placed.body.orders[0];
  const orderNo = order.orderNo as string;
  if (pay) {
    const outcome = await paymentSucceeded(h.app, orderNo, { paymentNo: `P-${orderNo}`, amount_fen: order.payableFen, paid_at_ms: h.clock.now() });
    if (outcome !== 'paid') throw new Error(`payment: ${outcome}`);
  }
  return orderNo;
}

/**
 * Nothing lost, nothing applied twice: every order's placed event cleared its buyer's cart and
 * was counted once, every paid order's reservation was confirmed and counted once, the stock
 * ledger holds exactly the paid units as sold, and the outboxes are empty.
 */
export async function expectEachEffectOnce(h: Harness, activitySkuId: number, orders: { orderNo: string; buyerId: number; paid: boolean }[]): Promise<void> {
  for (const [key, n] of await effectCounts(h.app)) expect(n, key).toBe(1);
  const mine = new Set(orders.map((o) => o.orderNo));
  const ofMine = async (type: string) => (await effectAggregates(h.app, `test.count.${type}`)).filter((a) => mine.has(a));
  expect(await ofMine(ORDER_PLACED)).toEqual([...mine].sort());
  const paid = orders.filter((o) => o.paid);
  expect(await ofMine(ORDER_PAID)).toEqual(paid.map((o) => o.orderNo).sort());
  const cartLeft = await h.app.db.selectFrom('cart_lines').select('buyer_id').where('buyer_id', 'in', orders.map((o) => o.buyerId)).execute();
  expect(cartLeft).toEqual([]);
  // Reservations are kept under the checkout number of each order.
  const checkoutOf = async (orderNo: string) => (await getOrder(h.app, orderNo)).checkoutNo;
  const paidCheckouts = await Promise.all(paid.map((o) => checkoutOf(o.orderNo)));
  const confirmed = await h.app.db.selectFrom('stock_reservations').select('order_no').where('state', '=', 'confirmed').where('activity_sku_id', '=', activitySkuId).execute();
  expect(confirmed.map((r) => r.order_no).sort()).toEqual(paidCheckouts.sort());
  expect((await stockLedger(h.app, activitySkuId)).sold).toBe(paid.length);
  // The real consumer's inbox holds each of these orders' placed events.
  const placedEvents = await (h.app.db as Kysely<any>).selectFrom('test_effects').select('event_id').where('consumer', '=', `test.count.${ORDER_PLACED}`).where('aggregate_id', 'in', [...mine]).execute();
  const inbox = await h.app.db.selectFrom('event_inbox').select('event_id').where('consumer', '=', 'cart.remove-ordered-lines').where('event_id', 'in', placedEvents.map((e) => e.event_id as string)).execute();
  expect(inbox).toHaveLength(orders.length);
  expect(await outboxCount(h.app)).toBe(0);
}
