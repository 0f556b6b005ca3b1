import { transaction } from '../src/platform/db/retry.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { releaseReservation, reserveStock, stockLevels } from '../src/inventory/index.ts';
import { availableEngines } from './support/engines.ts';
import { seedActivity, startHarness, type Harness } from './support/harness.ts';
import { asBuyer } from './support/client.ts';
import { untilQuiet } from './support/quiet.ts';

for (const engine of availableEngines()) {
  describe(`stock-linked activity price through checkout on ${engine.name}`, () => {
    let h: Harness;
    beforeAll(async () => {
      h = await startHarness(engine);
    });
    afterAll(async () => h?.close());
    const taken = async (sku: number) => (await stockLevels(h.app.db, [sku])).get(sku)!.activityPriceTaken;

    it('prices a quantity crossing the boundary on both sides, and gives the cheap units back on cancel', async () => {
      const f = await seedActivity(h.app, { skus: [{ price_fen: 1000, listPrice_fen: 2000, stock: 100, activityPriceUnits: 2 }] });
      const sku = f.activitySkuIds[0]!;
      const first = await asBuyer(h, 99_001).checkout({ leaderId: f.leaderId, items: [{ activitySkuId: sku, quantity: 5 }] });
      expect(first.status).toBe(201);
      expect(first.body.payableFen).toBe(2 * 1000 + 3 * 2000);
      expect(first.body.orders[0].payableFen).toBe(2 * 1000 + 3 * 2000);
      expect(first.body.orders[0].lines[0].segments).toEqual([{ quantity: 2, unitPriceFen: 1000, basis: 'activity' }, { quantity: 3, unitPriceFen: 2000, basis: 'list' }]);
      expect(await taken(sku)).toBe(2);

      const second = await asBuyer(h, 99_002).checkout({ leaderId: f.leaderId, items: [{ activitySkuId: sku, quantity: 1 }] });
      expect(second.body.payableFen).toBe(2000);

      const cancel = await asBuyer(h, 99_001).cancel(first.body.orders[0].orderNo);
      expect(cancel.status).toBe(200);
      await untilQuiet(h);
      expect(await taken(sku)).toBe(0);
      const third = await asBuyer(h, 99_003).checkout({ leaderId: f.leaderId, items: [{ activitySkuId: sku, quantity: 1 }] });
      expect(third.body.payableFen).toBe(1000);
    });

    it('prices and counts two stock-linked SKUs of one cart together', async () => {
      const f = await seedActivity(h.app, { skus: [{ price_fen: 1000, listPrice_fen: 2000, stock: 100, activityPriceUnits: 3 }, { price_fen: 500, listPrice_fen: 800, stock: 100, activityPriceUnits: 1 }] });
      const [x, y] = f.activitySkuIds as [number, number];
      const placed = await asBuyer(h, 99_050).checkout({ leaderId: f.leaderId, items: [{ activitySkuId: x, quantity: 4 }, { activitySkuId: y, quantity: 2 }] });
      expect(placed.body.payableFen).toBe(3 * 1000 + 2000 + 500 + 800);
      expect([await taken(x), await taken(y)]).toEqual([3, 1]);
    });

    it('a reservation reclaimed at list price gives back no activity-price units it no longer holds', async () => {
      const f = await seedActivity(h.app, { skus: [{ price_fen: 1000, listPrice_fen: 2000, stock: 100, activityPriceUnits: 2 }] });
      const sku = f.activitySkuIds[0]!;
      const [a, b] = [h.app.nextOrderNo(1, h.clock.now()), h.app.nextOrderNo(2, h.clock.now())];
      await reserveStock(h.app.db, a, [{ activitySkuId: sku, quantity: 2, activityPrice: { limit: 2, units: 2 } }], h.clock.now(), { firstAttempt: true });
      await transaction(h.app.db, (trx) => releaseReservation(trx, a, h.clock.now()));
      await reserveStock(h.app.db, b, [{ activitySkuId: sku, quantity: 2, activityPrice: { limit: 2, units: 2 } }], h.clock.now(), { firstAttempt: true });
      await reserveStock(h.app.db, a, [{ activitySkuId: sku, quantity: 2, activityPrice: { limit: 2, units: 0 } }], h.clock.now(), { firstAttempt: false });
      await transaction(h.app.db, (trx) => releaseReservation(trx, a, h.clock.now()));
      expect(await taken(sku)).toBe(2);
    });

    it('never sells more units at the activity price than the limit, however buyers race', async () => {
      const f = await seedActivity(h.app, { skus: [{ price_fen: 1000, listPrice_fen: 2000, stock: 1000, activityPriceUnits: 10 }] });
      const sku = f.activitySkuIds[0]!;
      const results = await Promise.all(Array.from({ length: 40 }, (_, i) => asBuyer(h, 99_100 + i).checkout({ leaderId: f.leaderId, items: [{ activitySkuId: sku, quantity: 1 }] })));
      const placed = results.filter((r) => r.status === 201);
      for (const r of results.filter((r) => r.status !== 201)) expect(r.body).toMatchObject({ code: 'price_changed', field: 'items.0.quantity' });
      const cheap = placed.filter((r) => r.body.payableFen === 1000);
      for (const r of placed) expect([1000, 2000]).toContain(r.body.payableFen);
      expect(cheap.length).toBeLessThanOrEqual(10);
      expect(await taken(sku)).toBe(cheap.length);
      const level = (await stockLevels(h.app.db, [sku])).get(sku)!;
      expect(level.reserved).toBe(placed.length);
      // Whatever raced, the units left at the activity price are exactly what was not taken.
      const shown = (await h.http.inject({ method: 'GET', url: `/activities/${f.activityId}` })).json();
      expect(shown.skus[0].activityPriceUnitsLeft).toBe(10 - cheap.length);
    });
  });
}
