import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSellableSkus } from '../src/catalog/index.ts';
import { MAX_ORDER_PAYABLE_FEN, MAX_RULE_AMOUNT_FEN, MAX_SHIPPING_FEE_FEN } from '../src/pricing/index.ts';
import { availableEngines } from './support/engines.ts';
import { seedActivity, startHarness, writtenRows, type Harness } from './support/harness.ts';
import { asAdmin, asBuyer } from './support/client.ts';

/**
 * Totals stay bounded: rule amounts are capped where an admin enters them, a shipping rule that
 * would charge past MAX_SHIPPING_FEE_FEN and an order past MAX_ORDER_PAYABLE_FEN are refused by
 * checkout and the preview with codes naming the limit, and a refusal writes nothing.
 */
for (const engine of availableEngines()) {
  describe(`bounded totals on ${engine.name}`, () => {
    let h: Harness;
    beforeAll(async () => {
      h = await startHarness(engine);
    });
    afterAll(async () => h?.close());

    /** What an order leaves behind (a refused checkout's key keeps its refusal as the answer, so keys are not counted). */
    const placedRows = async () => {
      const { orders, order_lines, stock_reservations, purchase_counters } = await writtenRows(h.app);
      return { orders, order_lines, stock_reservations, purchase_counters };
    };
    const window = () => ({ startsAt: new Date(h.clock.now() - 60_000).toISOString(), endsAt: new Date(h.clock.now() + 86_400_000).toISOString() });

    it('rule amounts are refused past MAX_RULE_AMOUNT_FEN and MAX_SHIPPING_FEE_FEN at admin input, accepted at them', async () => {
      const f = await seedActivity(h.app, { skus: [{ price_fen: 100, stock: 1 }] });
      const merchantId = (await loadSellableSkus(h.app.db, f.activitySkuIds)).get(f.activitySkuIds[0]!)!.merchantId;
      const perPiece = (additional_fen: number) => ({ merchantId, handover: 'delivery', charge: { kind: 'by_pieces', first_pieces: 0, first_fen: 0, additional_pieces: 1, additional_fen } });
      expect((await asAdmin(h).createShippingRule(perPiece(MAX_SHIPPING_FEE_FEN))).status).toBe(201);
      const past = await asAdmin(h).createShippingRule(perPiece(MAX_SHIPPING_FEE_FEN + 1));
      expect([past.status, past.body.code, past.body.field]).toEqual([400, 'invalid_field', 'charge.additional_fen']);
      expect(past.body.message).toContain('MAX_SHIPPING_FEE_FEN');
      const promotion = (off_fen: number) => ({ name: 'big', scope: { kind: 'platform' }, rule: { kind: 'amount_off', threshold_fen: 1, off_fen }, ...window(), enabled: false });
      expect((await asAdmin(h).createPromotion(promotion(MAX_RULE_AMOUNT_FEN))).status).toBe(201);
      const tooBig = await asAdmin(h).createPromotion(promotion(MAX_RULE_AMOUNT_FEN + 1));
      expect([tooBig.status, tooBig.body.code, tooBig.body.field]).toEqual([400, 'invalid_field', 'rule.off_fen']);
      const coupon = (off_fen: number) => ({ name: 'big', scope: { kind: 'platform' }, rule: { kind: 'fixed', off_fen, threshold_fen: 0 }, validFrom: window().startsAt, validUntil: window().endsAt, perBuyerLimit: 1 });
      expect((await asAdmin(h).createCouponTemplate(coupon(MAX_RULE_AMOUNT_FEN))).status).toBe(201);
      expect((await asAdmin(h).createCouponTemplate(coupon(MAX_RULE_AMOUNT_FEN + 1))).body).toMatchObject({ code: 'invalid_field', field: 'rule.off_fen' });
    });

    it('shipping up to MAX_SHIPPING_FEE_FEN is charged; one fen past it is 422 shipping_fee_exceeds_limit at preview and checkout, writing nothing', async () => {
      const f = await seedActivity(h.app, { skus: [{ price_fen: 100, stock: 50 }] });
      const sku = f.activitySkuIds[0]!;
      const merchantId = (await loadSellableSkus(h.app.db, [sku])).get(sku)!.merchantId;
      // The first piece costs 1 fen (2 in BJ), each further piece MAX_SHIPPING_FEE_FEN - 1: two pieces reach the limit, or pass it by one fen.
      const rule = (first_fen: number, regions?: string[]) => ({ merchantId, handover: 'delivery', ...(regions && { regions }), charge: { kind: 'by_pieces', first_pieces: 1, first_fen, additional_pieces: 1, additional_fen: MAX_SHIPPING_FEE_FEN - 1 } });
      expect((await asAdmin(h).createShippingRule(rule(1))).status).toBe(201);
      expect((await asAdmin(h).createShippingRule(rule(2, ['BJ']))).status).toBe(201);
      const order = (region: string) => ({ leaderId: f.leaderId, items: [{ activitySkuId: sku, quantity: 2 }], handover: 'delivery', region });

      const atLimit = await asBuyer(h, 95_001).checkout(order('SH'));
      expect([atLimit.status, atLimit.body.shippingFen]).toEqual([201, MAX_SHIPPING_FEE_FEN]);

      const buyer = 95_002;
      expect((await asBuyer(h, buyer).cart.add(sku, 2)).status).toBe(200);
      const before = await placedRows();
      const preview = await asBuyer(h, buyer).cart.preview({ handover: 'delivery', region: 'BJ' });
      expect([preview.status, preview.body.code, preview.body.details]).toEqual([422, 'shipping_fee_exceeds_limit', { merchantId, limit: 'MAX_SHIPPING_FEE_FEN', max_fen: MAX_SHIPPING_FEE_FEN }]);
      const past = await asBuyer(h, buyer).checkout(order('BJ'));
      expect([past.status, past.body.code]).toEqual([422, 'shipping_fee_exceeds_limit']);
      expect(await placedRows()).toEqual(before);
    });

    it('an order of MAX_ORDER_PAYABLE_FEN is placed; one fen more is 422 order_payable_exceeds_limit, writing nothing', async () => {
      const f = await seedActivity(h.app, { skus: [{ price_fen: MAX_ORDER_PAYABLE_FEN / 2, stock: 50 }, { price_fen: 1, stock: 50 }] });
      const [big, small] = f.activitySkuIds as [number, number];
      const atLimit = await asBuyer(h, 95_011).checkout({ leaderId: f.leaderId, items: [{ activitySkuId: big, quantity: 2 }] });
      expect([atLimit.status, atLimit.body.payableFen]).toEqual([201, MAX_ORDER_PAYABLE_FEN]);
      const g = await seedActivity(h.app, { skus: [{ price_fen: 1_000_000_000, stock: 100 }] });
      const before = await placedRows();
      const past = await asBuyer(h, 95_012).checkout({ leaderId: f.leaderId, items: [{ activitySkuId: big, quantity: 2 }, { activitySkuId: small, quantity: 1 }] });
      expect([past.status, past.body.code, past.body.details]).toEqual([422, 'order_payable_exceeds_limit', { limit: 'MAX_ORDER_PAYABLE_FEN', max_fen: MAX_ORDER_PAYABLE_FEN, payable_fen: MAX_ORDER_PAYABLE_FEN + 1 }]);
      // The order: 99 units at the highest activity price the catalog takes.
      const huge = await asBuyer(h, 95_013).checkout({ leaderId: g.leaderId, items: [{ activitySkuId: g.activitySkuIds[0]!, quantity: 99 }] });
      expect([huge.status, huge.body.code]).toEqual([422, 'order_payable_exceeds_limit']);
      expect(await placedRows()).toEqual(before);
    });
  });
}
