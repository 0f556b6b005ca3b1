import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reservationsOf } from '../src/inventory/index.ts';
import { availableEngines } from './support/engines.ts';
import { newKey, seedActivity, startHarness, writtenRows, type CatalogFixture, stockLedger, type Harness } from './support/harness.ts';
import { anonymous, asBuyer, withToken } from './support/client.ts';
import { untilQuiet } from './support/quiet.ts';

for (const engine of availableEngines()) {
  describe(`checkout on ${engine.name}`, () => {
    let h: Harness;
    beforeAll(async () => {
      h = await startHarness(engine);
    });
    afterAll(async () => h?.close());

    const ledger = (activitySkuId: number) => stockLedger(h.app, activitySkuId);

    it('never oversells: 200 concurrent checkouts for 50 units place exactly 50 orders', async () => {
      const f = await seedActivity(h.app, { skus: [{ price_fen: 990, stock: 50 }] });
      const sku = f.activitySkuIds[0]!;
      const results = await Promise.all(
        Array.from({ length: 200 }, (_, i) => asBuyer(h, 10_000 + i).checkout({ leaderId: f.leaderId, items: [{ activitySkuId: sku, quantity: 1 }] })),
      );
      const placed = results.filter((r) => r.status === 201);
      const refused = results.filter((r) => r.status !== 201);
      expect(placed).toHaveLength(50);
      expect(refused).toHaveLength(150);
      for (const r of refused) expect(r.body).toMatchObject({ code: 'insufficient_stock', field: 'items.0.quantity' });
      // One merchant: each checkout is one order.
      for (const r of placed) expect(r.body.orders).toHaveLength(1);
      expect(new Set(placed.map((r) => r.body.checkoutNo)).size).toBe(50);
      expect(new Set(placed.map((r) => r.body.orders[0].orderNo)).size).toBe(50);
      const level = await ledger(sku);
      expect(level).toMatchObject({ total: 50, available: 0, reserved: 50, sold: 0 });
      // The stock is held under the checkout number.
      for (const r of placed) expect(await reservationsOf(h.app.db, r.body.checkoutNo)).toEqual([{ activitySkuId: sku, quantity: 1, state: 'reserved' }]);
    });

    it('never creates an order twice: one submission sent 20 times at once with one key', async () => {
      const f = await seedActivity(h.app, { skus: [{ price_fen: 1500, stock: 100 }] });
      const sku = f.activitySkuIds[0]!;
      const key = newKey();
      const body = { leaderId: f.leaderId, items: [{ activitySkuId: sku, quantity: 3 }] };
      const results = await Promise.all(Array.from({ length: 20 }, () => asBuyer(h, 20_001).checkout(body, { key })));
      for (const r of results) expect(r.status).toBe(201);
      expect(new Set(results.map((r) => r.body.checkoutNo)).size).toBe(1);
      expect(new Set(results.map((r) => r.body.orders[0].orderNo)).size).toBe(1);
      const orders = await h.app.shards.forBuyer(20_001).selectFrom('orders').select('order_no').where('buyer_id', '=', 20_001).execute();
      expect(orders).toHaveLength(1);
      expect(await ledger(sku)).toMatchObject({ available: 97, reserved: 3 });

      // The same key later answers the same; with another body it is refused.
      const again = await asBuyer(h, 20_001).checkout(body, { key });
      expect(again).toEqual({ status: 201, body: results[0]!.body });
      const other = await asBuyer(h, 20_001).checkout({ ...body, items: [{ activitySkuId: sku, quantity: 4 }] }, { key });
      expect(other).toMatchObject({ status: 409, body: { code: 'idempotency_key_reused' } });
      // The key is the buyer's own: another buyer may use the same string.
      const otherBuyer = await asBuyer(h, 20_002).checkout(body, { key });
      expect(otherBuyer.status).toBe(201);
      expect(otherBuyer.body.checkoutNo).not.toBe(results[0]!.body.checkoutNo);
      expect(otherBuyer.body.orders[0].orderNo).not.toBe(results[0]!.body.orders[0].orderNo);
    });

    it('never deadlocks: carts holding the same SKUs in opposite order, checked out concurrently 100 times', async () => {
      const f = await seedActivity(h.app, { skus: [{ price_fen: 100, stock: 10_000 }, { price_fen: 200, stock: 10_000 }, { price_fen: 300, stock: 10_000 }] });
      const [a, b, c] = f.activitySkuIds as [number, number, number];
      const results = await Promise.all(
        Array.from({ length: 100 }, (_, i) => {
          const ids = i % 2 === 0 ? [a, b, c] : [c, b, a];
          return asBuyer(h, 30_000 + i).checkout({ leaderId: f.leaderId, items: ids.map((id) => ({ activitySkuId: id, quantity: 2 })) });
        }),
      );
      expect(results.filter((r) => r.status !== 201)).toEqual([]);
      for (const id of [a, b, c]) expect(await ledger(id)).toMatchObject({ available: 9_800, reserved: 200 });
    });

    it('reserves a whole cart or nothing: one short line refuses the order and takes no stock', async () => {
      const f = await seedActivity(h.app, { skus: [{ price_fen: 100, stock: 10 }, { price_fen: 100, stock: 2 }, { price_fen: 100, stock: 10 }] });
      const [a, b, c] = f.activitySkuIds as [number, number, number];
      const refused = await asBuyer(h, 35_001).checkout({ leaderId: f.leaderId, items: [{ activitySkuId: c, quantity: 1 }, { activitySkuId: b, quantity: 3 }, { activitySkuId: a, quantity: 1 }] });
      expect(refused.body).toMatchObject({ code: 'insufficient_stock', field: 'items.1.quantity' });
      for (const id of [a, b, c]) expect(await ledger(id)).toMatchObject({ reserved: 0 });
      const placed = await asBuyer(h, 35_002).checkout({ leaderId: f.leaderId, items: [{ activitySkuId: c, quantity: 1 }, { activitySkuId: b, quantity: 2 }, { activitySkuId: a, quantity: 1 }] });
      expect(placed.status).toBe(201);
      expect([await ledger(a), await ledger(b), await ledger(c)].map((l) => l.reserved)).toEqual([1, 2, 1]);
    });

    it('enforces the purchase limit across the buyer’s live orders, even when they race', async () => {
      const f = await seedActivity(h.app, { skus: [{ price_fen: 500, stock: 1_000, purchaseLimit: 3 }] });
      const sku = f.activitySkuIds[0]!;
      const buyer = 40_001;
      const item = (quantity: number) => ({ leaderId: f.leaderId, items: [{ activitySkuId: sku, quantity }] });
      const results = await Promise.all(Array.from({ length: 10 }, () => asBuyer(h, buyer).checkout(item(1))));
      expect(results.filter((r) => r.status === 201)).toHaveLength(3);
      for (const r of results.filter((r) => r.status !== 201)) expect(r.body).toMatchObject({ code: 'purchase_limit_exceeded', field: 'items.0.quantity' });
      // The refused checkouts gave their reservations back.
      expect(await ledger(sku)).toMatchObject({ available: 997, reserved: 3 });

      // Cancelling a live order frees its share of the limit.
      const first = results.find((r) => r.status === 201)!;
      const cancel = await asBuyer(h, buyer).cancel(first.body.orders[0].orderNo);
      expect(cancel.status).toBe(200);
      expect((await asBuyer(h, buyer).checkout(item(1))).status).toBe(201);
      expect((await asBuyer(h, buyer).checkout(item(1))).body.code).toBe('purchase_limit_exceeded');
    });

    it('clears the ordered lines from the cart after checkout, and keeps the others', async () => {
      const f = await seedActivity(h.app, { skus: [{ price_fen: 700, stock: 50 }, { price_fen: 800, stock: 50 }] });
      const [a, b] = f.activitySkuIds as [number, number];
      const buyer = 50_001;
      for (const id of [a, b]) {
        const added = await asBuyer(h, buyer).cart.add(id, 2);
        expect(added.status).toBe(200);
      }
      expect((await asBuyer(h, buyer).checkout({ leaderId: f.leaderId, items: [{ activitySkuId: a, quantity: 2 }] })).status).toBe(201);
      await untilQuiet(h);
      const cart = (await asBuyer(h, buyer).cart.get()).body;
      expect(cart.lines.map((l: any) => l.activitySkuId)).toEqual([b]);
    });

    it('gives another buyer’s order as 404', async () => {
      const f = await seedActivity(h.app, { skus: [{ price_fen: 700, stock: 5 }] });
      const placed = await asBuyer(h, 60_001).checkout({ leaderId: f.leaderId, items: [{ activitySkuId: f.activitySkuIds[0]!, quantity: 1 }] });
      const mine = await asBuyer(h, 60_001).order(placed.body.orders[0].orderNo);
      expect(mine.status).toBe(200);
      const theirs = await asBuyer(h, 60_002).order(placed.body.orders[0].orderNo);
      expect(theirs.status).toBe(404);
      expect(theirs.body.code).toBe('order_not_found');
      // Its checkout likewise.
      expect((await asBuyer(h, 60_001).checkoutOf(placed.body.checkoutNo)).status).toBe(200);
      const theirCheckout = await asBuyer(h, 60_002).checkoutOf(placed.body.checkoutNo);
      expect([theirCheckout.status, theirCheckout.body.code]).toEqual([404, 'checkout_not_found']);
      const list = (await asBuyer(h, 60_002).orders()).body;
      expect(list.orders).toEqual([]);
    });

    describe('bad input gets a clear 4xx and writes nothing', () => {
      let f: CatalogFixture;
      let ended: CatalogFixture;
      let notStarted: CatalogFixture;
      beforeAll(async () => {
        f = await seedActivity(h.app, { skus: [{ price_fen: 1200, stock: 10 }, { price_fen: 1300, stock: 10 }] });
        ended = await seedActivity(h.app, { skus: [{ price_fen: 1200, stock: 10 }], opensIn_ms: -3 * 3600_000, closesIn_ms: -3600_000 });
        notStarted = await seedActivity(h.app, { skus: [{ price_fen: 1200, stock: 10 }], opensIn_ms: 3600_000, closesIn_ms: 5 * 3600_000 });
      });
      const line = (quantity: unknown, activitySkuId?: number) => ({ activitySkuId: activitySkuId ?? f.activitySkuIds[0], quantity });
      const cases: { name: string; body: () => unknown; key?: string | null; status: number; code: string; field?: string }[] = [
        { name: 'negative quantity', body: () => ({ leaderId: f.leaderId, items: [line(-1)] }), status: 400, code: 'invalid_field', field: 'items.0.quantity' },
        { name: 'zero quantity', body: () => ({ leaderId: f.leaderId, items: [line(0)] }), status: 400, code: 'invalid_field', field: 'items.0.quantity' },
        { name: 'huge quantity', body: () => ({ leaderId: f.leaderId, items: [line(1e12)] }), status: 400, code: 'invalid_field', field: 'items.0.quantity' },
        { name: 'fractional quantity', body: () => ({ leaderId: f.leaderId, items: [line(1.5)] }), status: 400, code: 'invalid_field', field: 'items.0.quantity' },
        { name: 'quantity as a string', body: () => ({ leaderId: f.leaderId, items: [line('2')] }), status: 400, code: 'invalid_field', field: 'items.0.quantity' },
        { name: 'unknown SKU', body: () => ({ leaderId: f.leaderId, items: [line(1, 9_999_999)] }), status: 422, code: 'activity_sku_not_found', field: 'items.0.activitySkuId' },
        { name: 'ended activity', body: () => ({ leaderId: f.leaderId, items: [line(1, ended.activitySkuIds[0])] }), status: 422, code: 'activity_not_open', field: 'items.0.activitySkuId' },
        { name: 'activity not started', body: () => ({ leaderId: f.leaderId, items: [line(1, notStarted.activitySkuIds[0])] }), status: 422, code: 'activity_not_open', field: 'items.0.activitySkuId' },
        { name: 'missing Idempotency-Key', body: () => ({ leaderId: f.leaderId, items: [line(1)] }), key: null, status: 400, code: 'missing_idempotency_key', field: 'Idempotency-Key' },
        { name: 'over-long Idempotency-Key', body: () => ({ leaderId: f.leaderId, items: [line(1)] }), key: 'k'.repeat(129), status: 400, code: 'invalid_field', field: 'Idempotency-Key' },
        { name: 'a price sent by the client', body: () => ({ leaderId: f.leaderId, items: [{ ...line(1), priceFen: 1 }] }), status: 400, code: 'invalid_field', field: 'items.0.priceFen' },
        { name: 'a total sent by the client', body: () => ({ leaderId: f.leaderId, items: [line(1)], payableFen: 1 }), status: 400, code: 'invalid_field', field: 'payableFen' },
        { name: 'no items', body: () => ({ leaderId: f.leaderId, items: [] }), status: 400, code: 'invalid_field', field: 'items' },
        { name: 'too many lines', body: () => ({ leaderId: f.leaderId, items: Array.from({ length: 51 }, (_, i) => line(1, i + 1)) }), status: 400, code: 'invalid_field', field: 'items' },
        { name: 'the same SKU twice', body: () => ({ leaderId: f.leaderId, items: [line(1), line(2)] }), status: 422, code: 'duplicate_line', field: 'items.1.activitySkuId' },
        { name: 'unknown leader', body: () => ({ leaderId: 9_999_999, items: [line(1)] }), status: 422, code: 'leader_not_found', field: 'leaderId' },
        { name: 'missing leader', body: () => ({ items: [line(1)] }), status: 400, code: 'invalid_field', field: 'leaderId' },
        { name: 'not JSON', body: () => 'not json', status: 400, code: 'invalid_request' },
      ];
      for (const c of cases) {
        it(c.name, async () => {
          await untilQuiet(h);
          const before = await writtenRows(h.app);
          const body = c.body();
          const response =
            typeof body === 'string'
              ? await asBuyer(h, 70_001).checkout(body, { headers: { 'content-type': 'application/json' } })
              : await asBuyer(h, 70_001).checkout(body, { key: c.key });
          expect(response.status).toBe(c.status);
          const error = response.body;
          expect(error.code).toBe(c.code);
          expect(typeof error.message).toBe('string');
          if (c.field) expect(error.field).toBe(c.field);
          await untilQuiet(h);
          expect(await writtenRows(h.app)).toEqual(before);
        });
      }

      it('no token, a forged token, a merchant token', async () => {
        const body = { leaderId: f.leaderId, items: [line(1)] };
        const none = await anonymous(h).checkout(body);
        expect([none.status, none.body.code]).toEqual([401, 'unauthenticated']);
        const forged = h.buyerToken(1).slice(0, -2) + 'xx';
        const bad = await withToken(h, forged).checkout(body);
        expect([bad.status, bad.body.code]).toEqual([401, 'unauthenticated']);
      });

      it('refuses a body over the size limit', async () => {
        const response = await asBuyer(h, 70_001).checkout(JSON.stringify({ leaderId: f.leaderId, items: [line(1)], remark: 'x'.repeat(70_000) }), { headers: { 'content-type': 'application/json' } });
        expect([response.status, response.body.code]).toEqual([413, 'payload_too_large']);
      });
    });
  });
}
