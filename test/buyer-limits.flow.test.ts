import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CART_HOLD_TTL_MS, MAX_CART_HOLD_LIFETIME_MS } from '../src/cart/index.ts';
import { CHECKOUT_RATE_LIMIT, MAX_OPEN_ORDERS_PER_BUYER, MAX_UNPAID_UNITS_PER_BUYER_SKU, paymentSucceeded } from '../src/orders/index.ts';
import { availableEngines, testRedisUrl } from './support/engines.ts';
import { testRedis } from './support/redis.ts';
import { seedActivity, startHarness, stockLedger, writtenRows, type Harness } from './support/harness.ts';
import { asBuyer } from './support/client.ts';
import { untilQuiet } from './support/quiet.ts';

/**
 * One buyer cannot lock an activity's stock: unpaid orders per buyer and unpaid units per SKU
 * (without a purchase limit of its own) are capped, also under concurrent checkouts; a cart hold
 * lives at most MAX_CART_HOLD_LIFETIME_MS however often it is renewed; checkouts are
 * rate-limited per buyer. Each refusal is a named code and writes no order.
 */
const REDIS_URL = testRedisUrl();

for (const engine of availableEngines()) {
  describe(`per-buyer limits on ${engine.name}`, () => {
    let h: Harness;
    beforeAll(async () => {
      h = await startHarness(engine, { limits: { maxOpenOrdersPerBuyer: MAX_OPEN_ORDERS_PER_BUYER, maxUnpaidUnitsPerBuyerSku: MAX_UNPAID_UNITS_PER_BUYER_SKU } });
    });
    afterAll(async () => h?.close());

    /** What an order leaves behind (a refused checkout's key keeps its refusal as the answer, so keys are not counted). */
    const placedRows = async () => {
      const { orders, order_lines, stock_reservations, purchase_counters } = await writtenRows(h.app);
      // A checkout row is written with its orders (拆单).
      let checkouts = 0;
      for (const shard of new Set(h.app.shards.databases)) checkouts += Number((await shard.selectFrom('checkouts').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
      return { checkouts, orders, order_lines, stock_reservations, purchase_counters };
    };

    it('a buyer may have MAX_OPEN_ORDERS_PER_BUYER unpaid orders; one more is 409 open_orders_limit_reached until one is paid or cancelled', async () => {
      const f = await seedActivity(h.app, { skus: [{ price_fen: 100, stock: 1000 }] });
      const order = { leaderId: f.leaderId, items: [{ activitySkuId: f.activitySkuIds[0]!, quantity: 1 }] };
      const buyer = 93_001;
      const placed = [];
      for (let i = 0; i < MAX_OPEN_ORDERS_PER_BUYER; i++) placed.push(await asBuyer(h, buyer).checkout(order));
      expect(placed.map((r) => r.status)).toEqual(Array(MAX_OPEN_ORDERS_PER_BUYER).fill(201));
      const before = await placedRows();
      const over = await asBuyer(h, buyer).checkout(order);
      expect([over.status, over.body.code, over.body.details]).toEqual([409, 'open_orders_limit_reached', { limit: 'MAX_OPEN_ORDERS_PER_BUYER', max: MAX_OPEN_ORDERS_PER_BUYER }]);
      expect(await placedRows()).toEqual(before);
      expect(await stockLedger(h.app, f.activitySkuIds[0]!)).toMatchObject({ reserved: MAX_OPEN_ORDERS_PER_BUYER });
      // Another buyer is not held back.
      expect((await asBuyer(h, 93_002).checkout(order)).status).toBe(201);
      // A paid order and a cancelled one no longer count.
      expect(await paymentSucceeded(h.app, placed[0]!.body.orders[0].orderNo, { paymentNo: 'P-limit-1', amount_fen: 100, paid_at_ms: h.clock.now() })).toBe('paid');
      expect((await asBuyer(h, buyer).checkout(order)).status).toBe(201);
      expect((await asBuyer(h, buyer).checkout(order)).body.code).toBe('open_orders_limit_reached');
      expect((await asBuyer(h, buyer).cancel(placed[1]!.body.orders[0].orderNo)).status).toBe(200);
      expect((await asBuyer(h, buyer).checkout(order)).status).toBe(201);
    });

    it('concurrent checkouts of one buyer never pass MAX_OPEN_ORDERS_PER_BUYER', async () => {
      const f = await seedActivity(h.app, { skus: [{ price_fen: 100, stock: 1000 }] });
      const order = { leaderId: f.leaderId, items: [{ activitySkuId: f.activitySkuIds[0]!, quantity: 1 }] };
      const buyer = 93_011;
      for (let i = 0; i < MAX_OPEN_ORDERS_PER_BUYER - 2; i++) expect((await asBuyer(h, buyer).checkout(order)).status).toBe(201);
      const results = await Promise.all(Array.from({ length: 12 }, () => asBuyer(h, buyer).checkout(order)));
      expect(results.filter((r) => r.status === 201)).toHaveLength(2);
      for (const r of results.filter((r) => r.status !== 201)) expect(r.body.code).toBe('open_orders_limit_reached');
      await untilQuiet(h);
      expect(await stockLedger(h.app, f.activitySkuIds[0]!)).toMatchObject({ available: 1000 - MAX_OPEN_ORDERS_PER_BUYER, reserved: MAX_OPEN_ORDERS_PER_BUYER });
    });

    it('unpaid orders may hold MAX_UNPAID_UNITS_PER_BUYER_SKU units of a SKU without a purchase limit; one more is 409 unpaid_units_limit_reached', async () => {
      const f = await seedActivity(h.app, { skus: [{ price_fen: 100, stock: 1000 }, { price_fen: 100, stock: 1000, purchaseLimit: 150 }] });
      const [free, limited] = f.activitySkuIds as [number, number];
      const buyer = 93_021;
      const line = (activitySkuId: number, quantity: number) => ({ leaderId: f.leaderId, items: [{ activitySkuId, quantity }] });
      expect((await asBuyer(h, buyer).checkout(line(free, MAX_UNPAID_UNITS_PER_BUYER_SKU))).status).toBe(201);
      const before = await placedRows();
      const over = await asBuyer(h, buyer).checkout({ leaderId: f.leaderId, items: [{ activitySkuId: limited, quantity: 1 }, { activitySkuId: free, quantity: 1 }] });
      expect([over.status, over.body.code, over.body.field]).toEqual([409, 'unpaid_units_limit_reached', 'items.1.quantity']);
      expect(over.body.details).toEqual({ activitySkuId: free, limit: 'MAX_UNPAID_UNITS_PER_BUYER_SKU', max: MAX_UNPAID_UNITS_PER_BUYER_SKU, unpaid: MAX_UNPAID_UNITS_PER_BUYER_SKU });
      expect(await placedRows()).toEqual(before);
      // A SKU with a purchase limit of its own is bounded by that (150) instead.
      expect((await asBuyer(h, buyer).checkout(line(limited, 99))).status).toBe(201);
      expect((await asBuyer(h, buyer).checkout(line(limited, 51))).status).toBe(201);
      expect((await asBuyer(h, buyer).checkout(line(limited, 1))).body.code).toBe('purchase_limit_exceeded');
      // Two at once that together pass the limit: one is placed.
      const results = await Promise.all([asBuyer(h, 93_022).checkout(line(free, 50)), asBuyer(h, 93_022).checkout(line(free, 50))]);
      expect(results.map((r) => r.status).sort()).toEqual([201, 409]);
    });

    it('re-sending the same quantity renews a cart hold only up to MAX_CART_HOLD_LIFETIME_MS from its first making', async () => {
      const f = await seedActivity(h.app, { skus: [{ price_fen: 500, stock: 10 }], inventoryMode: 'on_add_to_cart' });
      const sku = f.activitySkuIds[0]!;
      const buyer = 93_031;
      const first = (await asBuyer(h, buyer).cart.add(sku, 4)).body;
      const made_ms = Date.parse(first.lines[0].heldUntil) - CART_HOLD_TTL_MS;
      const ends_ms = made_ms + MAX_CART_HOLD_LIFETIME_MS;
      // Renewed every half TTL: each renewal holds for a full TTL, until the end of the lifetime.
      let heldUntil_ms = 0;
      while (h.clock.now() + CART_HOLD_TTL_MS / 2 < ends_ms) {
        h.clock.advance(CART_HOLD_TTL_MS / 2);
        await untilQuiet(h);
        const view = (await asBuyer(h, buyer).cart.setQuantity(sku, 4)).body;
        heldUntil_ms = Date.parse(view.lines[0].heldUntil);
        expect(heldUntil_ms).toBeLessThanOrEqual(ends_ms);
        expect(await stockLedger(h.app, sku)).toMatchObject({ available: 6, reserved: 4 });
      }
      expect(heldUntil_ms).toBe(ends_ms);
      // At the end of its lifetime the hold goes, and touching, or removing and adding again, brings it back no more.
      h.clock.advance(ends_ms - h.clock.now());
      await untilQuiet(h);
      expect(await stockLedger(h.app, sku)).toMatchObject({ available: 10, reserved: 0 });
      expect((await asBuyer(h, buyer).cart.setQuantity(sku, 4)).body.lines[0].heldUntil).toBeNull();
      await asBuyer(h, buyer).cart.remove(sku);
      expect((await asBuyer(h, buyer).cart.add(sku, 4)).body.lines[0].heldUntil).toBeNull();
      expect(await stockLedger(h.app, sku)).toMatchObject({ available: 10, reserved: 0 });
      // The line can still be bought, from what is available.
      const placed = await asBuyer(h, buyer).checkout({ leaderId: f.leaderId, items: [{ activitySkuId: sku, quantity: 4 }] });
      expect(placed.status).toBe(201);
      expect(await stockLedger(h.app, sku)).toMatchObject({ available: 6, reserved: 4 });
    });
  });

  describe(`checkout rate limit per buyer on ${engine.name}`, () => {
    let h: Harness;
    beforeAll(async () => {
      h = await startHarness(engine, { limits: { checkoutRateLimit: CHECKOUT_RATE_LIMIT } });
    });
    afterAll(async () => h?.close());

    it('CHECKOUT_RATE_LIMIT checkouts of one buyer are served; the next is 429 checkout_rate_limited and writes nothing; other buyers go on', async () => {
      const f = await seedActivity(h.app, { skus: [{ price_fen: 100, stock: 1000 }] });
      const order = { leaderId: f.leaderId, items: [{ activitySkuId: f.activitySkuIds[0]!, quantity: 1 }] };
      const buyer = 93_101;
      for (let i = 0; i < CHECKOUT_RATE_LIMIT; i++) expect((await asBuyer(h, buyer).checkout(order)).status).toBe(201);
      // Refused before the handler: not even the key is written (events and jobs move on their own, so they are not counted).
      const written = async () => {
        const { orders, order_lines, idempotency_keys, stock_reservations, purchase_counters } = await writtenRows(h.app);
        return { orders, order_lines, idempotency_keys, stock_reservations, purchase_counters };
      };
      const before = await written();
      const limited = await asBuyer(h, buyer).checkout(order, { key: 'rate-limited-1' });
      expect([limited.status, limited.body.code]).toEqual([429, 'checkout_rate_limited']);
      expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
      expect(await written()).toEqual(before);
      expect((await asBuyer(h, 93_102).checkout(order)).status).toBe(201);
    });
  });

  // With REDIS_URL the count is Redis's, so API processes beside one another count together.
  describe.skipIf(!REDIS_URL)(`checkout rate limit per buyer, counted in Redis, on ${engine.name}`, () => {
    const prefix = `tg-test-rate-${engine.name}-${process.pid}:`;
    let first: Harness;
    let second: Harness;
    let owned: ReturnType<typeof testRedis> | undefined;
    beforeAll(async () => {
      owned = testRedis(REDIS_URL!, prefix);
      first = await startHarness(engine, { redisUrl: REDIS_URL!, redisKeyPrefix: prefix, limits: { checkoutRateLimit: CHECKOUT_RATE_LIMIT } });
      // A second API process on the same databases and Redis.
      second = await startHarness(engine, { databases: first.databases, clock: first.clock, redisUrl: REDIS_URL!, redisKeyPrefix: prefix, limits: { checkoutRateLimit: CHECKOUT_RATE_LIMIT }, worker: false });
    });
    afterAll(async () => {
      await second?.close({ keepDatabases: true });
      await first?.close();
      await owned?.close();
    });

    it('checkouts of one buyer through two API processes share one CHECKOUT_RATE_LIMIT', async () => {
      const f = await seedActivity(first.app, { skus: [{ price_fen: 100, stock: 1000 }] });
      const order = { leaderId: f.leaderId, items: [{ activitySkuId: f.activitySkuIds[0]!, quantity: 1 }] };
      const buyer = 93_201;
      for (let i = 0; i < CHECKOUT_RATE_LIMIT; i++) expect((await asBuyer(i % 2 === 0 ? first : second, buyer).checkout(order)).status).toBe(201);
      for (const h of [first, second]) {
        const limited = await asBuyer(h, buyer).checkout(order);
        expect([limited.status, limited.body.code]).toEqual([429, 'checkout_rate_limited']);
      }
      expect((await owned!.redis.keys(`${prefix}rate-limit:*`)).length).toBeGreaterThan(0);
    });
  });
}
