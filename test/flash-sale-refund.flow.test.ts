/**
 * Refunds of stock that Redis serves (秒杀), on every SQL engine, through the payment centre and
 * the channel sandbox. The invariants: a refunded line's units are available again in the
 * database and in Redis, counted once in each however often the return is repeated or wherever
 * it is interrupted (between the database and Redis, or by Redis losing the activity); the stock
 * ledger balances; the reconciler finds no drift and never mistakes a return under way for one.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reservationsOf, returnSoldStock } from '../src/inventory/index.ts';
import { flashSaleUpkeep, isLoaded, keysOf, MAX_RETURNS_PER_PASS, reconcileActivity, returnFlashSaleStock, type FlashSale } from '../src/inventory/flash-sale/index.ts';
import { getOrder } from '../src/orders/index.ts';
import { slotOfBuyer } from '../src/platform/shards.ts';
import { testRedis } from './support/redis.ts';
import { availableEngines, testRedisUrl } from './support/engines.ts';
import { seedActivity, startHarness, stockLedger, type Harness } from './support/harness.ts';
import { asBuyer } from './support/client.ts';
import { untilQuiet } from './support/quiet.ts';

const REDIS_URL = testRedisUrl();

for (const engine of availableEngines()) {
  describe.skipIf(!REDIS_URL)(`refunds of flash-sale stock on ${engine.name}`, () => {
    let h: Harness;
    let fs: FlashSale;
    let redis: Redis;
    let owned: ReturnType<typeof testRedis> | undefined;
    let buyer = 500_000;
    const prefix = `tgtest:${randomBytes(4).toString('hex')}:refund:${engine.name}:`;
    beforeAll(async () => {
      h = await startHarness(engine, { sandbox: {}, redisUrl: REDIS_URL!, redisKeyPrefix: prefix });
      fs = h.app.flashSale!;
      owned = testRedis(REDIS_URL!, prefix);
      redis = owned.redis;
    });
    afterAll(async () => {
      await owned?.close();
      await h?.close();
    });

    const admin = () => ({ authorization: `Bearer ${h.adminToken()}` });
    const redisAvailable = async (activityId: number, sku: number) => Number(await redis.hget(keysOf(fs, activityId).avail, String(sku)));
    const ledger = async (sku: number) => {
      const { available, reserved, sold } = await stockLedger(h.app, sku);
      return { available, reserved, sold };
    };

    async function hotActivity(skus: { price_fen: number; stock: number }[]) {
      const f = await seedActivity(h.app, { skus });
      const patched = await h.http.inject({ method: 'PATCH', url: `/admin/activities/${f.activityId}`, headers: admin(), payload: { hot: true } });
      expect(patched.json()).toMatchObject({ hot: true });
      expect(await isLoaded(fs, f.activityId)).toBe(true);
      return f;
    }


    /** Checks out the items through Redis and pays the order at the sandbox's cashier; its number, and its checkout's (the holds are under it). */
    async function paidOrder(items: { activitySkuId: number; quantity: number }[], leaderId: number) {
      const buyerId = ++buyer;
      const placed = await asBuyer(h, buyerId).checkout({ leaderId, items });
      expect(placed.status).toBe(201);
      expect(placed.body.orders).toHaveLength(1);
      const orderNo = placed.body.orders[0].orderNo as string;
      const checkoutNo = placed.body.checkoutNo as string;
      await untilQuiet(h);
      const method = h.app.payments.channels.get('alipay')!.methods[0]!;
      const started = await h.http.inject({ method: 'POST', url: `/orders/${orderNo}/payments`, headers: { authorization: `Bearer ${h.buyerToken(buyerId)}` }, payload: { channel: 'alipay', method } });
      expect(started.statusCode).toBe(201);
      const clicked = await fetch(`${h.sandbox!.url}/sandbox/cashier/alipay/${started.json().payNo}/pay`, { method: 'POST' });
      expect(clicked.status).toBe(200);
      await untilQuiet(h);
      expect(await getOrder(h.app, orderNo)).toMatchObject({ status: 'PAID' });
      return { orderNo, checkoutNo };
    }

    async function refund(orderNo: string, lineNos?: number[]) {
      const response = await h.http.inject({
        method: 'POST',
        url: `/admin/orders/${orderNo}/refunds`,
        headers: { ...admin(), 'idempotency-key': `refund-${orderNo}-${lineNos?.join('.') ?? 'all'}` },
        payload: lineNos ? { lineNos } : {},
      });
      expect(response.statusCode).toBe(201);
      await untilQuiet(h);
    }

    const states = async (checkoutNo: string) => (await reservationsOf(h.app.db, checkoutNo)).map((r) => [r.activitySkuId, r.state]);

    it('a refunded line of a hot SKU is available again in Redis and in the database, once; the reconciler finds no drift', async () => {
      const f = await hotActivity([{ price_fen: 990, stock: 10 }, { price_fen: 500, stock: 10 }]);
      const [a, b] = f.activitySkuIds as [number, number];
      const { orderNo, checkoutNo } = await paidOrder([{ activitySkuId: a, quantity: 3 }, { activitySkuId: b, quantity: 1 }], f.leaderId);
      expect(await ledger(a)).toEqual({ available: 7, reserved: 0, sold: 3 });
      expect(await redisAvailable(f.activityId, a)).toBe(7);

      await refund(orderNo, [1]);
      expect(await ledger(a)).toEqual({ available: 10, reserved: 0, sold: 0 });
      expect(await redisAvailable(f.activityId, a)).toBe(10);
      // The line not refunded stays sold, in both.
      expect(await ledger(b)).toEqual({ available: 9, reserved: 0, sold: 1 });
      expect(await redisAvailable(f.activityId, b)).toBe(9);
      expect(await states(checkoutNo)).toEqual([[a, 'returned'], [b, 'confirmed']]);
      expect(await reconcileActivity(fs, h.app.db, f.activityId)).toEqual([]);

      // The event delivered again (at least once): neither side counts the units twice.
      expect(await returnSoldStock(h.app.db, checkoutNo, [a], h.clock.now())).toBe(0);
      expect(await returnFlashSaleStock(fs, h.app.db, checkoutNo, h.clock.now())).toBe(0);
      expect(await redisAvailable(f.activityId, a)).toBe(10);

      // The rest of the order refunded too; then all ten units of a sell again, through Redis.
      await refund(orderNo);
      expect([await redisAvailable(f.activityId, b), (await ledger(b)).available]).toEqual([10, 10]);
      const again = await asBuyer(h, ++buyer).checkout({ leaderId: f.leaderId, items: [{ activitySkuId: a, quantity: 10 }] });
      expect(again.status).toBe(201);
      await untilQuiet(h);
      expect(await redisAvailable(f.activityId, a)).toBe(0);
      expect(await ledger(a)).toEqual({ available: 0, reserved: 10, sold: 0 });
      expect(await reconcileActivity(fs, h.app.db, f.activityId)).toEqual([]);
    });

    it('a crash between the database and Redis: the upkeep finishes the return once, and the reconciler never takes it for drift', async () => {
      const f = await hotActivity([{ price_fen: 500, stock: 10 }]);
      const sku = f.activitySkuIds[0]!;
      const { checkoutNo } = await paidOrder([{ activitySkuId: sku, quantity: 4 }], f.leaderId);
      // The database half of the return commits … and the process dies before telling Redis.
      expect(await returnSoldStock(h.app.db, checkoutNo, 'all', h.clock.now())).toBe(4);
      expect(await states(checkoutNo)).toEqual([[sku, 'returning']]);
      expect(await ledger(sku)).toEqual({ available: 10, reserved: 0, sold: 0 });
      expect(await redisAvailable(f.activityId, sku)).toBe(6);
      // Units owed to Redis by a return under way are not drift: a repair now would count them twice.
      expect(await reconcileActivity(fs, h.app.db, f.activityId)).toEqual([]);
      expect(await redisAvailable(f.activityId, sku)).toBe(6);

      const first = await flashSaleUpkeep(fs, h.app.db, h.clock.now());
      expect(first.returned).toBe(4);
      expect(first.repaired).toEqual([]);
      expect(await redisAvailable(f.activityId, sku)).toBe(10);
      expect(await states(checkoutNo)).toEqual([[sku, 'returned']]);
      expect(await flashSaleUpkeep(fs, h.app.db, h.clock.now())).toMatchObject({ returned: 0, repaired: [] });
      expect(await redisAvailable(f.activityId, sku)).toBe(10);
    });

    it('Redis loses the activity while a return is half done: the reload counts the units, and the return adds nothing twice', async () => {
      const f = await hotActivity([{ price_fen: 500, stock: 10 }]);
      const sku = f.activitySkuIds[0]!;
      const { checkoutNo } = await paidOrder([{ activitySkuId: sku, quantity: 2 }], f.leaderId);
      expect(await returnSoldStock(h.app.db, checkoutNo, 'all', h.clock.now())).toBe(2);
      // The activity's keys are gone, as after a Redis restart (the shared server keeps running).
      const k = keysOf(fs, f.activityId);
      await redis.del(k.avail, k.bought, k.orders, k.loaded, k.seq);

      // The return finds the activity unloaded, loads it from the database (whose available holds
      // the two units already) and then adds nothing.
      expect(await returnFlashSaleStock(fs, h.app.db, checkoutNo, h.clock.now())).toBe(0);
      expect(await redisAvailable(f.activityId, sku)).toBe(10);
      expect(await states(checkoutNo)).toEqual([[sku, 'returned']]);
      expect(await ledger(sku)).toEqual({ available: 10, reserved: 0, sold: 0 });
      expect(await reconcileActivity(fs, h.app.db, f.activityId)).toEqual([]);
    });

    it('taken off hot while a return is half done: the database keeps the units and serves them', async () => {
      const f = await hotActivity([{ price_fen: 500, stock: 5 }]);
      const sku = f.activitySkuIds[0]!;
      const { checkoutNo } = await paidOrder([{ activitySkuId: sku, quantity: 1 }], f.leaderId);
      expect(await returnSoldStock(h.app.db, checkoutNo, 'all', h.clock.now())).toBe(1);
      const off = await h.http.inject({ method: 'PATCH', url: `/admin/activities/${f.activityId}`, headers: admin(), payload: { hot: false } });
      expect(off.json()).toMatchObject({ hot: false });
      expect(await returnFlashSaleStock(fs, h.app.db, checkoutNo, h.clock.now())).toBe(0);
      expect(await states(checkoutNo)).toEqual([[sku, 'returned']]);
      const placed = await asBuyer(h, ++buyer).checkout({ leaderId: f.leaderId, items: [{ activitySkuId: sku, quantity: 5 }] });
      expect(placed.status).toBe(201);
      expect(await ledger(sku)).toEqual({ available: 0, reserved: 5, sold: 0 });
    });

    it('an activity Redis lost after it stopped being hot is not loaded again for a return: the upkeep gives it back, then finishes the return', async () => {
      const f = await hotActivity([{ price_fen: 500, stock: 5 }]);
      const sku = f.activitySkuIds[0]!;
      const { checkoutNo } = await paidOrder([{ activitySkuId: sku, quantity: 2 }], f.leaderId);
      expect(await returnSoldStock(h.app.db, checkoutNo, 'all', h.clock.now())).toBe(2);
      // Off hot behind the admin route's back (as when the activity ends), and Redis lost it.
      await h.app.db.updateTable('activities').set({ hot: 0 }).where('id', '=', f.activityId).execute();
      const k = keysOf(fs, f.activityId);
      await redis.del(k.avail, k.bought, k.orders, k.loaded, k.seq);
      expect(await returnFlashSaleStock(fs, h.app.db, checkoutNo, h.clock.now())).toBe(0);
      expect(await isLoaded(fs, f.activityId)).toBe(false);
      expect(await states(checkoutNo)).toEqual([[sku, 'returning']]);

      const report = await flashSaleUpkeep(fs, h.app.db, h.clock.now());
      expect(report.unloaded).toContain(f.activityId);
      expect(await states(checkoutNo)).toEqual([[sku, 'returned']]);
      expect(await ledger(sku)).toEqual({ available: 5, reserved: 0, sold: 0 });
    });

    it(`one upkeep pass finishes at most MAX_RETURNS_PER_PASS (${MAX_RETURNS_PER_PASS}) half-done returns; the one past it waits, still owed, for the next pass`, async () => {
      // The invariant: a pass's work is bounded, and what it leaves is not lost nor taken for drift.
      const waiting = MAX_RETURNS_PER_PASS + 1;
      const f = await hotActivity([{ price_fen: 500, stock: waiting }]);
      const sku = f.activitySkuIds[0]!;
      const now = h.clock.now();
      // Each order bought one unit and was refunded in the database (the unit is available there
      // again), and every process died before telling Redis, which still counts them all sold.
      const orderNos = Array.from({ length: waiting }, () => h.app.nextOrderNo(slotOfBuyer(++buyer), now)).sort();
      await h.app.db
        .insertInto('stock_reservations')
        .values(orderNos.map((orderNo) => ({ order_no: orderNo, activity_sku_id: sku, quantity: 1, state: 'returning', buyer_id: buyer, created_at_ms: now, updated_at_ms: now })))
        .execute();
      await redis.hset(keysOf(fs, f.activityId).avail, String(sku), 0);
      const returningOrders = async () => (await h.app.db.selectFrom('stock_reservations').select('order_no').where('state', '=', 'returning').orderBy('order_no').execute()).map((r) => r.order_no);
      expect(await returningOrders()).toEqual(orderNos);

      const first = await flashSaleUpkeep(fs, h.app.db, h.clock.now());
      expect(first).toMatchObject({ returned: MAX_RETURNS_PER_PASS, repaired: [] });
      expect(await redisAvailable(f.activityId, sku)).toBe(MAX_RETURNS_PER_PASS);
      // Oldest first: the last order number is the one left, still returning and still owed.
      expect(await returningOrders()).toEqual(orderNos.slice(MAX_RETURNS_PER_PASS));
      expect(await reconcileActivity(fs, h.app.db, f.activityId)).toEqual([]);

      const second = await flashSaleUpkeep(fs, h.app.db, h.clock.now());
      expect(second).toMatchObject({ returned: 1, repaired: [] });
      expect(await redisAvailable(f.activityId, sku)).toBe(waiting);
      expect(await returningOrders()).toEqual([]);
      expect(await ledger(sku)).toEqual({ available: waiting, reserved: 0, sold: 0 });
    });
  });
}
