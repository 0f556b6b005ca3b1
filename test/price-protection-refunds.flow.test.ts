import { transaction } from '../src/platform/db/retry.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { updateActivitySku } from '../src/catalog/index.ts';
import { buyerCoupons, createCouponTemplate, issueCoupons, returnCouponsOnRefund } from '../src/coupons/index.ts';
import type { DomainEvent } from '../src/events/outbox.ts';
import { ORDER_PRICE_PROTECTED, paymentSucceeded, PRICE_PROTECTION_DAYS } from '../src/orders/index.ts';
import { earnPoints, grantPoints, pointsAccount, returnPointsOnRefund } from '../src/points/index.ts';
import { availableEngines } from './support/engines.ts';
import { seedActivity, startHarness, type Harness } from './support/harness.ts';
import { asAdmin, asBuyer } from './support/client.ts';
import { untilQuiet } from './support/quiet.ts';

const DAY = 86_400_000;

for (const engine of availableEngines()) {
  describe(`price protection and refund-time returns on ${engine.name}`, () => {
    let h: Harness;
    const protectedEvents: DomainEvent<any>[] = [];
    beforeAll(async () => {
      h = await startHarness(engine);
      h.app.bus.subscribe(ORDER_PRICE_PROTECTED, 'test.capture', async (e) => void protectedEvents.push(e));
    });
    afterAll(async () => h?.close());

    async function paidOrder(buyerId: number, quantity: number, extra: Record<string, unknown> = {}) {
      const f = await seedActivity(h.app, { skus: [{ price_fen: 1000, stock: 100 }] });
      const placed = await asBuyer(h, buyerId).checkout({ leaderId: f.leaderId, items: [{ activitySkuId: f.activitySkuIds[0]!, quantity }], ...extra });
      expect(placed.status).toBe(201);
      // One merchant: the checkout's one order is what is paid, and it is all the checkout has to pay.
      const [order] = placed.body.orders as { orderNo: string; payableFen: number }[];
      expect(placed.body.orders).toHaveLength(1);
      expect(order!.payableFen).toBe(placed.body.payableFen);
      expect(await paymentSucceeded(h.app, order!.orderNo, { paymentNo: `P-${order!.orderNo}`, amount_fen: order!.payableFen, paid_at_ms: h.clock.now() })).toBe('paid');
      await untilQuiet(h);
      // Points and coupons are held under the checkout's number (a platform coupon may span its orders).
      return { orderNo: order!.orderNo, checkoutNo: placed.body.checkoutNo as string, activitySkuId: f.activitySkuIds[0]!, payable: order!.payableFen };
    }
    const claim = (buyerId: number, orderNo: string, lineNo = 1) =>
      asBuyer(h, buyerId).claimPriceProtection(orderNo, lineNo);

    it('pays back a later price drop once per line, and tells the payment centre', async () => {
      const buyer = 98_001;
      const { orderNo, activitySkuId } = await paidOrder(buyer, 3);
      expect((await claim(buyer, orderNo)).body).toMatchObject({ code: 'price_protection_not_eligible', details: { reason: 'no_price_drop' } });
      await updateActivitySku(h.app.db, activitySkuId, { price_fen: 800 }, h.clock.now());
      const results = await Promise.all(Array.from({ length: 10 }, () => claim(buyer, orderNo)));
      const ok = results.filter((r) => r.status === 201);
      expect(ok).toHaveLength(1);
      expect(ok[0]!.body).toMatchObject({ paidUnitPriceFen: 1000, currentUnitPriceFen: 800, quantity: 3, amountFen: 600 });
      for (const r of results.filter((r) => r.status !== 201)) expect(r.body.code).toBe('price_protection_already_claimed');
      await untilQuiet(h);
      expect(protectedEvents.filter((e) => e.payload.orderNo === orderNo).map((e) => e.payload.amount_fen)).toEqual([600]);
      expect((await claim(98_999, orderNo)).status).toBe(404);
    });

    it('refuses unpaid orders and claims after the window', async () => {
      const f = await seedActivity(h.app, { skus: [{ price_fen: 1000, stock: 10 }] });
      const unpaid = await asBuyer(h, 98_002).checkout({ leaderId: f.leaderId, items: [{ activitySkuId: f.activitySkuIds[0]!, quantity: 1 }] });
      await updateActivitySku(h.app.db, f.activitySkuIds[0]!, { price_fen: 500 }, h.clock.now());
      expect((await claim(98_002, unpaid.body.orders[0].orderNo)).body.details.reason).toBe('not_paid');

      const { orderNo, activitySkuId } = await paidOrder(98_003, 1);
      await updateActivitySku(h.app.db, activitySkuId, { price_fen: 500 }, h.clock.now());
      h.clock.advance((PRICE_PROTECTION_DAYS + 1) * DAY);
      expect((await claim(98_003, orderNo)).body.details.reason).toBe('window_closed');
      h.clock.advance(-(PRICE_PROTECTION_DAYS + 1) * DAY);
    });

    it('returns spent points in proportion to each refund, adding up to all of them on a full refund', async () => {
      const buyer = 98_010;
      await grantPoints(h.app.db, buyer, 1000, 'g-98010', 'test', h.clock.now());
      const { checkoutNo, payable } = await paidOrder(buyer, 3, { points: 300 });
      expect(payable).toBe(2700);
      expect(await pointsAccount(h.app.db, buyer)).toEqual({ balance: 700, frozen: 0, available: 700 });
      expect(await transaction(h.app.db, (trx) => returnPointsOnRefund(trx, checkoutNo, 'R1', 900, payable, h.clock.now()))).toBe(100);
      expect(await transaction(h.app.db, (trx) => returnPointsOnRefund(trx, checkoutNo, 'R1', 900, payable, h.clock.now()))).toBe(0);
      expect(await transaction(h.app.db, (trx) => returnPointsOnRefund(trx, checkoutNo, 'R2', 1000, payable, h.clock.now()))).toBe(11);
      expect(await transaction(h.app.db, (trx) => returnPointsOnRefund(trx, checkoutNo, 'R3', payable, payable, h.clock.now()))).toBe(189);
      expect(await pointsAccount(h.app.db, buyer)).toEqual({ balance: 1000, frozen: 0, available: 1000 });
    });

    it('price protection never pays back shipping, nor units that were charged list price', async () => {
      const buyer = 98_030;
      const f = await seedActivity(h.app, { skus: [{ price_fen: 1000, listPrice_fen: 2000, stock: 100, activityPriceUnits: 2 }] });
      const sku = f.activitySkuIds[0]!;
      const merchantId = (await h.http.inject({ method: 'GET', url: `/activities/${f.activityId}` })).json().skus[0].merchantId;
      await asAdmin(h).createShippingRule({ merchantId, handover: 'delivery', charge: { kind: 'flat', fee_fen: 800 } });
      const placed = await asBuyer(h, buyer).checkout({ leaderId: f.leaderId, items: [{ activitySkuId: sku, quantity: 5 }], handover: 'delivery', region: 'SH' });
      const order = placed.body.orders[0];
      expect(order.payableFen).toBe(2 * 1000 + 3 * 2000 + 800);
      await paymentSucceeded(h.app, order.orderNo, { paymentNo: 'P-pp', amount_fen: order.payableFen, paid_at_ms: h.clock.now() });
      expect((await claim(buyer, order.orderNo)).body.details.reason).toBe('no_price_drop');
      await updateActivitySku(h.app.db, sku, { price_fen: 900 }, h.clock.now());
      expect((await claim(buyer, order.orderNo)).body).toMatchObject({ amountFen: 2 * 100 });
    });

    it('concurrent refunds of one order never return more points than it spent', async () => {
      const buyer = 98_011;
      await grantPoints(h.app.db, buyer, 1000, 'g-98011', 'test', h.clock.now());
      const { checkoutNo, payable } = await paidOrder(buyer, 3, { points: 300 });
      const returned = await Promise.all(
        Array.from({ length: 8 }, (_, i) => transaction(h.app.db, (trx) => returnPointsOnRefund(trx, checkoutNo, `R${i}`, payable, payable, h.clock.now()))),
      );
      expect(returned.reduce((a, b) => a + b, 0)).toBe(300);
      expect(await pointsAccount(h.app.db, buyer)).toEqual({ balance: 1000, frozen: 0, available: 1000 });
    });

    it('price protection compares with what the buyer paid, discounts included', async () => {
      const buyer = 98_012;
      const now = h.clock.now();
      const template = await createCouponTemplate(h.app.db, { name: 'big', scope: { kind: 'platform' }, rule: { kind: 'fixed', off_fen: 900, threshold_fen: 0 }, validFrom: new Date(now - DAY).toISOString(), validUntil: new Date(now + DAY).toISOString(), perBuyerLimit: 1 }, now);
      const couponId = (await issueCoupons(h.app.db, template.id, [buyer], now)).issued[0]!.couponId;
      const { orderNo, activitySkuId, payable } = await paidOrder(buyer, 1, { couponIds: [couponId] });
      expect(payable).toBe(100);
      await updateActivitySku(h.app.db, activitySkuId, { price_fen: 950 }, h.clock.now());
      expect((await claim(buyer, orderNo)).body.details.reason).toBe('no_price_drop');
      await updateActivitySku(h.app.db, activitySkuId, { price_fen: 60 }, h.clock.now());
      expect((await claim(buyer, orderNo)).body).toMatchObject({ amountFen: 40 });
    });

    it('returns used coupons on a full refund when the policy says so, and earns points once', async () => {
      const buyer = 98_020;
      const now = h.clock.now();
      const template = await createCouponTemplate(h.app.db, { name: 'c', scope: { kind: 'platform' }, rule: { kind: 'fixed', off_fen: 100, threshold_fen: 0 }, validFrom: new Date(now - DAY).toISOString(), validUntil: new Date(now + DAY).toISOString(), perBuyerLimit: 2 }, now);
      const issued = (await issueCoupons(h.app.db, template.id, [buyer, buyer, buyer], now));
      expect(issued.refused).toEqual([{ buyerId: buyer, reason: 'per_buyer_limit' }]);
      const [first, second] = issued.issued.map((i) => i.couponId) as [number, number];
      const a = await paidOrder(buyer, 1, { couponIds: [first] });
      const b = await paidOrder(buyer, 1, { couponIds: [second] });
      expect(await returnCouponsOnRefund(h.app.db, a.checkoutNo, false, 'return_on_full_refund', now)).toBe(0);
      expect(await returnCouponsOnRefund(h.app.db, a.checkoutNo, true, 'return_on_full_refund', now)).toBe(1);
      expect(await returnCouponsOnRefund(h.app.db, b.checkoutNo, true, 'keep_used', now)).toBe(0);
      const states = new Map((await buyerCoupons(h.app.db, buyer, now)).map((c) => [c.couponId, c.state]));
      expect([states.get(first), states.get(second)]).toEqual(['available', 'used']);

      expect(await earnPoints(h.app.db, buyer, b.orderNo, 990, now)).toBe(9);
      expect(await earnPoints(h.app.db, buyer, b.orderNo, 990, now)).toBe(0);
    });
  });
}
