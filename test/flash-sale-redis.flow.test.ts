/**
 * 秒杀 through Redis, on every SQL engine. The invariants: never more orders than units (no
 * oversell), even when Redis loses its data in the middle of the sale; the stock ledger balances;
 * every unit Redis grants to an order that is never written, cancelled or timed out comes back
 * in Redis and in the database; drift between the two is found and repaired.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { Redis } from 'ioredis';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reservationsOf } from '../src/inventory/index.ts';
import { closeFlashSale, flashSaleUpkeep, grantFlashSale, isLoaded, keysOf, openFlashSale, recordPendingReservations, REDIS_COMMAND_TIMEOUT_MS, type FlashSale } from '../src/inventory/flash-sale/index.ts';
import { redisCall } from '../src/inventory/flash-sale/redis.ts';
import { scheduleJob } from '../src/jobs/index.ts';
import { VERIFY_RESERVATION_AFTER_MS, VERIFY_RESERVATION_JOB } from '../src/checkout/index.ts';
import { claimIdempotencyKey, requestHash } from '../src/orders/idempotency.ts';
import { transaction } from '../src/platform/db/retry.ts';
import { isAppError } from '../src/platform/errors.ts';
import { slotOfBuyer } from '../src/platform/shards.ts';
import { testRedis } from './support/redis.ts';
import { availableEngines, testRedisUrl } from './support/engines.ts';
import { HOUR_MS, newKey, seedActivity, startHarness, stockLedger, type Harness } from './support/harness.ts';
import { asBuyer } from './support/client.ts';
import { untilQuiet } from './support/quiet.ts';

const REDIS_URL = testRedisUrl();
const BUYERS = 2_000;
const UNITS = 100;
/** Requests in flight at once in the restart race, so the sale lasts long enough to be interrupted. */
const RESTART_RACE_CONCURRENCY = 100;

/**
 * Redis loses everything: a real restart of the local server (it keeps nothing on disk), or a
 * FLUSHALL where the server is elsewhere. Only this file uses Redis in the test run.
 */
async function restartRedis(url: string): Promise<void> {
  const { hostname, port } = new URL(url);
  const local = ['127.0.0.1', 'localhost', '[::1]'].includes(hostname);
  const admin = new Redis(url, { maxRetriesPerRequest: 1 });
  try {
    if (!local) return void (await admin.flushall());
    await admin.call('SHUTDOWN', 'NOSAVE').catch(() => undefined); // the server closes the connection
  } finally {
    admin.disconnect();
  }
  execFileSync('redis-server', ['--daemonize', 'yes', '--bind', '127.0.0.1', '-::1', '--port', port || '6379', '--save', '', '--appendonly', 'no', '--dir', '/var/lib/redis', '--logfile', '/var/log/redis/ci.log']);
  for (let i = 0; i < 100; i++) {
    try {
      execFileSync('redis-cli', ['-h', '127.0.0.1', '-p', port || '6379', 'ping'], { stdio: 'ignore' });
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error('redis did not come back');
}

async function runLimited<T>(count: number, concurrency: number, work: (i: number) => Promise<T>): Promise<T[]> {
  const results: T[] = new Array(count);
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < count) {
      const i = next++;
      results[i] = await work(i);
    }
  }));
  return results;
}

for (const engine of availableEngines()) {
  describe.skipIf(!REDIS_URL)(`flash sale through Redis on ${engine.name}`, () => {
    let h: Harness;
    let fs: FlashSale;
    let redis: Redis;
    let owned: ReturnType<typeof testRedis> | undefined;
    // Keys of this file (and engine) only, so parallel test files never meet.
    const prefix = `tgtest:${randomBytes(4).toString('hex')}:${engine.name}:`;
    beforeAll(async () => {
      h = await startHarness(engine, { redisUrl: REDIS_URL!, redisKeyPrefix: prefix });
      fs = h.app.flashSale!;
      owned = testRedis(REDIS_URL!, prefix);
      redis = owned.redis;
    });
    afterAll(async () => {
      await owned?.close();
      await h?.close();
    });

    /** One open hot activity (made hot through the admin route, which loads it into Redis). */
    async function hotActivity(skus: { price_fen: number; stock: number; purchaseLimit?: number | null }[]) {
      const f = await seedActivity(h.app, { skus });
      const patched = await h.http.inject({ method: 'PATCH', url: `/admin/activities/${f.activityId}`, headers: { authorization: `Bearer ${h.adminToken()}` }, payload: { hot: true } });
      expect(patched.json()).toMatchObject({ hot: true });
      expect(await isLoaded(fs, f.activityId)).toBe(true);
      return f;
    }
    const redisAvailable = async (activityId: number, sku: number) => Number(await redis.hget(keysOf(fs, activityId).avail, String(sku)));
    const countOrders = async (sku: number) => {
      let n = 0;
      for (const db of h.app.databases) {
        const row = await db.selectFrom('order_lines').select((eb) => eb.fn.countAll<number>().as('n')).where('activity_sku_id', '=', sku).executeTakeFirstOrThrow();
        n += Number(row.n);
      }
      return n;
    };
    const pendingRows = (sku: number) => h.app.db.selectFrom('stock_reservations').select('order_no').where('activity_sku_id', '=', sku).where('state', '=', 'pending').execute();

    it(`${BUYERS} concurrent buyers for ${UNITS} units: exactly ${UNITS} orders, the ledger balanced, Redis and the database agree`, async () => {
      const f = await hotActivity([{ price_fen: 990, stock: UNITS }]);
      const sku = f.activitySkuIds[0]!;
      const answers = await Promise.all(Array.from({ length: BUYERS }, (_, b) => asBuyer(h, 100_000 + b).checkout({ leaderId: f.leaderId, items: [{ activitySkuId: sku, quantity: 1 }] })));
      const placed = answers.filter((a) => a.status === 201);
      expect(placed).toHaveLength(UNITS);
      // Every refusal is the sold-out answer; anything else is printed whole, with its count.
      const unexpected = new Map<string, number>();
      for (const a of answers.filter((a) => a.status !== 201 && a.body.code !== 'insufficient_stock')) {
        const what = JSON.stringify({ status: a.status, code: a.body.code, details: a.body.details, message: a.body.message });
        unexpected.set(what, (unexpected.get(what) ?? 0) + 1);
      }
      expect(Object.fromEntries(unexpected)).toEqual({});
      await untilQuiet(h);
      expect(await countOrders(sku)).toBe(UNITS);
      expect(await stockLedger(h.app, sku)).toMatchObject({ total: UNITS, available: 0, reserved: UNITS, sold: 0 });
      expect(await redisAvailable(f.activityId, sku)).toBe(0);
      expect(await pendingRows(sku)).toEqual([]);
      expect((await flashSaleUpkeep(fs, h.app.db, h.clock.now())).repaired).toEqual([]);
    });

    it('Redis restarted in the middle of the sale: never an order too many, and exactly all units sold once it is reloaded', async () => {
      const f = await hotActivity([{ price_fen: 990, stock: UNITS }]);
      const sku = f.activitySkuIds[0]!;
      let placed = 0;
      let restart: Promise<void> | undefined;
      const body = { leaderId: f.leaderId, items: [{ activitySkuId: sku, quantity: 1 }] };
      const answers = await runLimited(BUYERS, RESTART_RACE_CONCURRENCY, async (b) => {
        const answer = await asBuyer(h, 200_000 + b).checkout(body);
        if (answer.status === 201 && ++placed === UNITS / 4) restart = restartRedis(REDIS_URL!);
        return answer;
      });
      await restart;
      const codes = new Set(answers.filter((a) => a.status !== 201).map((a) => a.body.code));
      expect([...codes].every((c) => c === 'insufficient_stock' || c === 'flash_sale_not_ready')).toBe(true);
      await untilQuiet(h);
      const during = await countOrders(sku);
      expect(during).toBeLessThanOrEqual(UNITS);
      expect(during).toBeGreaterThanOrEqual(UNITS / 4);
      await stockLedger(h.app, sku);
      // What Redis holds now was rebuilt from the database, open reservations included.
      expect(JSON.parse((await redis.get(keysOf(fs, f.activityId).loaded))!).records).toBeGreaterThanOrEqual(UNITS / 4);

      // Checkouts Redis answered just before it went away are in doubt: their units stay taken
      // until the verification job has seen that no order was written for them.
      h.clock.advance(VERIFY_RESERVATION_AFTER_MS + 1);
      await untilQuiet(h);
      await flashSaleUpkeep(fs, h.app.db, h.clock.now());
      const more = await Promise.all(Array.from({ length: 300 }, (_, b) => asBuyer(h, 260_000 + b).checkout(body)));
      await untilQuiet(h);
      expect(during + more.filter((a) => a.status === 201).length).toBe(UNITS);
      expect(await countOrders(sku)).toBe(UNITS);
      expect(await stockLedger(h.app, sku)).toMatchObject({ available: 0, reserved: UNITS, sold: 0 });
      expect(await redisAvailable(f.activityId, sku)).toBe(0);
      expect(await pendingRows(sku)).toEqual([]);
    });

    it('a repeat with the same order number is a no-op that answers the same, granted or refused', async () => {
      const f = await hotActivity([{ price_fen: 500, stock: 5 }]);
      const sku = f.activitySkuIds[0]!;
      const items = [{ activityId: f.activityId, activitySkuId: sku, quantity: 3, purchaseLimit: null }];
      const orderNo = h.app.nextOrderNo(slotOfBuyer(300_001), h.clock.now());
      await transaction(h.app.db, (trx) => recordPendingReservations(trx, orderNo, 300_001, items, h.clock.now()));
      await grantFlashSale(fs, h.app.db, orderNo, 300_001, items, h.clock.now());
      await grantFlashSale(fs, h.app.db, orderNo, 300_001, items, h.clock.now());
      expect(await redisAvailable(f.activityId, sku)).toBe(2);

      const refusedNo = h.app.nextOrderNo(slotOfBuyer(300_002), h.clock.now());
      const refuse = () => grantFlashSale(fs, h.app.db, refusedNo, 300_002, [{ ...items[0]!, quantity: 3 }], h.clock.now()).catch((e) => e);
      const first = await refuse();
      await redis.hincrby(keysOf(fs, f.activityId).avail, String(sku), 10); // stock appears meanwhile
      const again = await refuse();
      expect([isAppError(first, 'insufficient_stock'), isAppError(again, 'insufficient_stock')]).toEqual([true, true]);
      await redis.hincrby(keysOf(fs, f.activityId).avail, String(sku), -10);
    });

    it('the purchase limit is enforced in Redis, across concurrent checkouts, and freed by a cancel', async () => {
      const f = await hotActivity([{ price_fen: 500, stock: 50, purchaseLimit: 2 }]);
      const sku = f.activitySkuIds[0]!;
      // The script alone refuses: no order exists for the database's counter to look at.
      const orderNo = h.app.nextOrderNo(slotOfBuyer(300_010), h.clock.now());
      const over = [{ activityId: f.activityId, activitySkuId: sku, quantity: 3, purchaseLimit: 2 }];
      await transaction(h.app.db, (trx) => recordPendingReservations(trx, orderNo, 300_010, over, h.clock.now()));
      const refused = await grantFlashSale(fs, h.app.db, orderNo, 300_010, over, h.clock.now()).catch((e) => e);
      expect(isAppError(refused, 'purchase_limit_exceeded')).toBe(true);

      const buyer = 300_011;
      const body = { leaderId: f.leaderId, items: [{ activitySkuId: sku, quantity: 1 }] };
      const answers = await Promise.all(Array.from({ length: 6 }, () => asBuyer(h, buyer).checkout(body)));
      expect(answers.filter((a) => a.status === 201)).toHaveLength(2);
      expect(answers.filter((a) => a.status === 409).every((a) => a.body.code === 'purchase_limit_exceeded')).toBe(true);
      expect(Number(await redis.hget(keysOf(fs, f.activityId).bought, `${sku}:${buyer}`))).toBe(2);

      const orderToCancel = answers.find((a) => a.status === 201)!.body.orders[0].orderNo;
      const cancel = await h.http.inject({ method: 'POST', url: `/orders/${orderToCancel}/cancel`, headers: { authorization: `Bearer ${h.buyerToken(buyer)}` } });
      expect(cancel.statusCode).toBe(200);
      await untilQuiet(h);
      expect((await asBuyer(h, buyer).checkout(body)).status).toBe(201);
    });

    it('cancel and timeout give the units back in Redis and in the database', async () => {
      const f = await hotActivity([{ price_fen: 500, stock: 10 }]);
      const sku = f.activitySkuIds[0]!;
      const body = { leaderId: f.leaderId, items: [{ activitySkuId: sku, quantity: 3 }] };
      const cancelled = await asBuyer(h, 300_020).checkout(body);
      const timedOut = await asBuyer(h, 300_021).checkout(body);
      await untilQuiet(h);
      expect(await redisAvailable(f.activityId, sku)).toBe(4);
      expect(await stockLedger(h.app, sku)).toMatchObject({ available: 4, reserved: 6 });

      await h.http.inject({ method: 'POST', url: `/orders/${cancelled.body.orders[0].orderNo}/cancel`, headers: { authorization: `Bearer ${h.buyerToken(300_020)}` } });
      await untilQuiet(h);
      expect(await redisAvailable(f.activityId, sku)).toBe(7);
      expect(await stockLedger(h.app, sku)).toMatchObject({ available: 7, reserved: 3 });

      h.clock.advance(h.app.paymentTimeout_ms + 1);
      await untilQuiet(h);
      expect(await redisAvailable(f.activityId, sku)).toBe(10);
      expect(await stockLedger(h.app, sku)).toMatchObject({ available: 10, reserved: 0 });
      // The holds are kept under the checkout's number.
      expect(await reservationsOf(h.app.db, timedOut.body.checkoutNo)).toEqual([{ activitySkuId: sku, quantity: 3, state: 'released' }]);
    });

    it('a checkout that died between the Redis grant and writing its order gets its units back, in both', async () => {
      const f = await hotActivity([{ price_fen: 500, stock: 10 }]);
      const sku = f.activitySkuIds[0]!;
      const buyerId = 300_030;
      const key = newKey();
      const request = { leaderId: f.leaderId, items: [{ activitySkuId: sku, quantity: 4 }] };
      const claim = await claimIdempotencyKey(h.app.shards.forBuyer(buyerId), { buyerId, key, hash: requestHash(request), checkoutNo: h.app.nextOrderNo(slotOfBuyer(buyerId), h.clock.now()) }, h.clock.now);
      if (claim.kind === 'replay') throw new Error('unexpected replay');
      const now = h.clock.now();
      const items = [{ activityId: f.activityId, activitySkuId: sku, quantity: 4, purchaseLimit: null }];
      await transaction(h.app.db, async (trx) => {
        await recordPendingReservations(trx, claim.checkoutNo, buyerId, items, now);
        await scheduleJob(trx, { kind: VERIFY_RESERVATION_JOB, key: `${VERIFY_RESERVATION_JOB}:${claim.checkoutNo}`, payload: { checkoutNo: claim.checkoutNo }, due_at_ms: now + VERIFY_RESERVATION_AFTER_MS }, now);
      });
      await grantFlashSale(fs, h.app.db, claim.checkoutNo, buyerId, items, now);
      // … and the process dies here.
      expect(await redisAvailable(f.activityId, sku)).toBe(6);

      h.clock.advance(VERIFY_RESERVATION_AFTER_MS + 1);
      await untilQuiet(h);
      expect(await redisAvailable(f.activityId, sku)).toBe(10);
      expect(await stockLedger(h.app, sku)).toMatchObject({ available: 10, reserved: 0 });
      expect(await reservationsOf(h.app.db, claim.checkoutNo)).toEqual([{ activitySkuId: sku, quantity: 4, state: 'released' }]);
      // A grant for that checkout number arriving late is refused: the release left a tombstone.
      const late = await grantFlashSale(fs, h.app.db, claim.checkoutNo, buyerId, items, now).catch((e) => e);
      expect(isAppError(late, 'flash_sale_not_ready')).toBe(true);
      expect(await redisAvailable(f.activityId, sku)).toBe(10);
      // The client's retry with the same key places the order.
      expect((await asBuyer(h, buyerId).checkout(request, { key })).status).toBe(201);
    });

    it('the reconciler finds drift either way, repairs it and says so', async () => {
      const f = await hotActivity([{ price_fen: 500, stock: 20 }, { price_fen: 500, stock: 20 }]);
      const [a, b] = f.activitySkuIds as [number, number];
      await asBuyer(h, 300_040).checkout({ leaderId: f.leaderId, items: [{ activitySkuId: a, quantity: 2 }, { activitySkuId: b, quantity: 1 }] });
      await untilQuiet(h);
      // A lost Redis write on one SKU; sold units returned to the database (a refund) on the other.
      await redis.hincrby(keysOf(fs, f.activityId).avail, String(a), 5);
      await h.app.db.updateTable('stock').set((eb) => ({ total: eb('total', '+', 3), available: eb('available', '+', 3) })).where('activity_sku_id', '=', b).execute();
      const report = await flashSaleUpkeep(fs, h.app.db, h.clock.now());
      expect(report.repaired.filter((r) => r.activityId === f.activityId).map((r) => [r.activitySkuId, r.drift])).toEqual([[a, -5], [b, 3]]);
      expect([await redisAvailable(f.activityId, a), await redisAvailable(f.activityId, b)]).toEqual([18, 22]);
      expect((await flashSaleUpkeep(fs, h.app.db, h.clock.now())).repaired).toEqual([]);
    });

    it('a stock adjustment reaches Redis; taken off hot, the database serves the stock again', async () => {
      const f = await hotActivity([{ price_fen: 500, stock: 10 }]);
      const sku = f.activitySkuIds[0]!;
      const admin = { authorization: `Bearer ${h.adminToken()}` };
      await asBuyer(h, 300_050).checkout({ leaderId: f.leaderId, items: [{ activitySkuId: sku, quantity: 4 }] });
      const adjust = (delta: number, requestId: string) => h.http.inject({ method: 'POST', url: `/admin/activity-skus/${sku}/stock-adjustments`, headers: admin, payload: { delta, reason: 'count', requestId } });
      expect((await adjust(5, 'adj-1')).statusCode).toBe(201);
      expect(await redisAvailable(f.activityId, sku)).toBe(11);
      // Units promised in Redis (the order's, pending until the relay runs) cannot be taken away.
      expect((await adjust(-12, 'adj-2')).json()).toMatchObject({ code: 'stock_adjustment_refused' });
      expect((await adjust(-11, 'adj-3')).statusCode).toBe(201);
      expect(await redisAvailable(f.activityId, sku)).toBe(0);
      await untilQuiet(h);

      const off = await h.http.inject({ method: 'PATCH', url: `/admin/activities/${f.activityId}`, headers: admin, payload: { hot: false } });
      expect(off.json()).toMatchObject({ hot: false });
      expect(await isLoaded(fs, f.activityId)).toBe(false);
      expect((await adjust(3, 'adj-4')).statusCode).toBe(201);
      const placed = await asBuyer(h, 300_051).checkout({ leaderId: f.leaderId, items: [{ activitySkuId: sku, quantity: 3 }] });
      expect(placed.status).toBe(201);
      expect(await stockLedger(h.app, sku)).toMatchObject({ total: 7, available: 0, reserved: 7 });
    });
  });
}

describe.skipIf(!REDIS_URL)('flash sale without Redis', () => {
  it('a hot activity is served by the database, and stock a Redis gate held is taken back at start', async () => {
    const engine = availableEngines()[0]!;
    const database = await engine.createDatabase();
    const withRedis = await startHarness(engine, { databases: [database], redisUrl: REDIS_URL!, redisKeyPrefix: `tgtest:${randomBytes(4).toString('hex')}:plain:` });
    const f = await seedActivity(withRedis.app, { skus: [{ price_fen: 500, stock: 10 }], closesIn_ms: 2 * HOUR_MS });
    await withRedis.app.db.updateTable('activities').set({ hot: 1 }).where('id', '=', f.activityId).execute();
    const sku = f.activitySkuIds[0]!;
    const viaRedis = await asBuyer(withRedis, 400_001).checkout({ leaderId: f.leaderId, items: [{ activitySkuId: sku, quantity: 2 }] });
    expect(viaRedis.status).toBe(201);
    await withRedis.close({ keepDatabases: true });

    const plain = await startHarness(engine, { databases: [database] });
    try {
      expect(plain.app.flashSale).toBeUndefined();
      const placed = await asBuyer(plain, 400_002).checkout({ leaderId: f.leaderId, items: [{ activitySkuId: sku, quantity: 3 }] });
      expect(placed.status).toBe(201);
      await untilQuiet(plain);
      expect(await stockLedger(plain.app, sku)).toMatchObject({ available: 5, reserved: 5 });
    } finally {
      await plain.close();
    }
  });
});

/**
 * The command timeout is Redis's silence, not this process's own lag: with two thousand
 * checkouts on one event loop (or a loaded machine) an answer can wait unread past the deadline,
 * and a buyer was told "Redis is out of reach" — losing the unit Redis had just granted.
 */
describe.skipIf(!REDIS_URL)('the Redis command timeout', () => {
  const silentLog = pino({ level: 'silent' });

  it('an answer that waits unread while this process is busy is an answer, not a timeout', async () => {
    const fs = openFlashSale(REDIS_URL!, `tgtest:${randomBytes(4).toString('hex')}:lag:`, silentLog);
    try {
      await redisCall(() => fs.redis.ping()); // connected and ready
      const answer = redisCall(() => fs.redis.ping()); // sent now …
      const busyUntil_ms = Date.now() + REDIS_COMMAND_TIMEOUT_MS + 500; // … and read only after the deadline
      while (Date.now() < busyUntil_ms);
      expect(await answer).toBe('PONG');
    } finally {
      await closeFlashSale(fs);
    }
  });

  it('a Redis that never answers still fails the command, soon after the deadline', async () => {
    const sockets: Socket[] = [];
    const mute = createServer((socket) => void sockets.push(socket)); // accepts, never answers
    await new Promise<void>((resolve) => mute.listen(0, '127.0.0.1', resolve));
    const fs = openFlashSale(`redis://127.0.0.1:${(mute.address() as AddressInfo).port}`, 'tgtest:mute:', silentLog);
    try {
      const started_ms = Date.now();
      const failed = await redisCall(() => fs.redis.ping()).catch((e) => e);
      expect(isAppError(failed, 'flash_sale_not_ready')).toBe(true);
      expect(Date.now() - started_ms).toBeGreaterThanOrEqual(REDIS_COMMAND_TIMEOUT_MS - 50);
      expect(Date.now() - started_ms).toBeLessThan(REDIS_COMMAND_TIMEOUT_MS + 1_000);
    } finally {
      fs.redis.disconnect();
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => mute.close(resolve));
    }
  });
});
