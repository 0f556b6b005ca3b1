import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { availableEngines } from './support/engines.ts';
import { seedActivity, startHarness, stockLedger, type Harness } from './support/harness.ts';
import { asAdmin, asBuyer } from './support/client.ts';

for (const engine of availableEngines()) {
  describe(`stock adjustments on ${engine.name}`, () => {
    let h: Harness;
    beforeAll(async () => {
      h = await startHarness(engine);
    });
    afterAll(async () => h?.close());

    const adjust = (activitySkuId: number, delta: number, requestId: string, reason = 'count correction') =>
      asAdmin(h).adjustStock(activitySkuId, { delta, reason, requestId });
    const level = (activitySkuId: number) => stockLedger(h.app, activitySkuId);

    it('adds and takes away stock as ledger entries with reasons; a repeat is applied once', async () => {
      const f = await seedActivity(h.app, { skus: [{ price_fen: 100, stock: 50 }] });
      const sku = f.activitySkuIds[0]!;
      expect((await adjust(sku, 10, 'a1', 'second truck arrived')).body).toMatchObject({ delta: 10, totalAfter: 60, availableAfter: 60, actor: 'admin' });
      expect((await adjust(sku, 10, 'a1', 'second truck arrived')).body).toMatchObject({ totalAfter: 60 });
      expect((await asBuyer(h, 99_500).checkout({ leaderId: f.leaderId, items: [{ activitySkuId: sku, quantity: 20 }] })).status).toBe(201);
      expect((await adjust(sku, -5, 'a2', 'damaged in transit')).status).toBe(201);
      const refused = await adjust(sku, -36, 'a3');
      expect([refused.status, refused.body.code]).toEqual([409, 'stock_adjustment_refused']);
      expect(await level(sku)).toMatchObject({ total: 55, available: 35, reserved: 20 });
      const list = (await asAdmin(h).stockAdjustments(sku)).body;
      expect(list.adjustments.map((a: any) => [a.delta, a.reason])).toEqual([[-5, 'damaged in transit'], [10, 'second truck arrived']]);
      expect((await adjust(9_999_999, 1, 'a4')).status).toBe(404);
    });

    it('adjustments racing checkouts never take reserved stock or break the ledger', async () => {
      const f = await seedActivity(h.app, { skus: [{ price_fen: 100, stock: 20 }] });
      const sku = f.activitySkuIds[0]!;
      const [adjustments, checkouts] = await Promise.all([
        Promise.all(Array.from({ length: 15 }, (_, i) => adjust(sku, -1, `race-${engine.name}-${i}`))),
        Promise.all(Array.from({ length: 15 }, (_, i) => asBuyer(h, 99_600 + i).checkout({ leaderId: f.leaderId, items: [{ activitySkuId: sku, quantity: 1 }] }))),
      ]);
      const taken = adjustments.filter((r) => r.status === 201).length;
      const placed = checkouts.filter((r) => r.status === 201).length;
      expect(taken + placed).toBe(20);
      expect(await level(sku)).toMatchObject({ total: 20 - taken, available: 0, reserved: placed });
    });
  });
}
