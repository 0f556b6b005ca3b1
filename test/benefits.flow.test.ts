import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buyerCoupons, createCouponTemplate, issueCoupons } from '../src/coupons/index.ts';
import { stockLevels } from '../src/inventory/index.ts';
import { getOrder, paymentSucceeded } from '../src/orders/index.ts';
import { grantPoints, pointsAccount } from '../src/points/index.ts';
import { availableEngines } from './support/engines.ts';
import { seedActivity, startHarness, type Harness } from './support/harness.ts';
import { asAdmin, asBuyer } from './support/client.ts';
import { untilQuiet } from './support/quiet.ts';

const DAY = 86_400_000;

for (const engine of availableEngines()) {
  describe(`coupons, points and promotions through checkout on ${engine.name}`, () => {
    let h: Harness;
    beforeAll(async () => {
      h = await startHarness(engine);
    });
    afterAll(async () => h?.close());

    async function couponFor(buyerId: number, rule = { kind: 'fixed' as const, off_fen: 500, threshold_fen: 1000 }, validFor_ms = 30 * DAY) {
      const now = h.clock.now();
      const template = await createCouponTemplate(
        h.app.db,
        { name: '5 yuan off', scope: { kind: 'platform' }, rule, validFrom: new Date(now - DAY).toISOString(), validUntil: new Date(now + validFor_ms).toISOString(), perBuyerLimit: 5 },
        now,
      );
      const { issued } = await issueCoupons(h.app.db, template.id, [buyerId], now);
      return issued[0]!.couponId;
    }
    const stateOf = async (buyerId: number, couponId: number) => (await buyerCoupons(h.app.db, buyerId, h.clock.now())).find((c) => c.couponId === couponId)!;

    it('a coupon is locked at checkout, used at payment, and discounts the order', async () => {
      const f = await seedActivity(h.app, { skus: [{ price_fen: 1200, stock: 50 }] });
      const buyer = 97_001;
      const couponId = await couponFor(buyer);
      const placed = await asBuyer(h, buyer).checkout({ leaderId: f.leaderId, items: [{ activitySkuId: f.activitySkuIds[0]!, quantity: 2 }], couponIds: [couponId] });
      expect(placed.status).toBe(201);
      expect(placed.body).toMatchObject({ itemsTotalFen: 2400, discountTotalFen: 500, payableFen: 1900, couponIds: [couponId] });
      // One merchant: the checkout is one order, which carries the same totals.
      const order = placed.body.orders[0];
      expect(order).toMatchObject({ itemsTotalFen: 2400, discountTotalFen: 500, payableFen: 1900 });
      // A platform coupon is the platform's money.
      expect(order.lines[0].discounts).toEqual([{ source: 'coupon', id: String(couponId), amountFen: 500, funder: 'platform' }]);
      expect((await stateOf(buyer, couponId)).state).toBe('locked');

      // The same coupon cannot be used by a second order meanwhile.
      const second = await asBuyer(h, buyer).checkout({ leaderId: f.leaderId, items: [{ activitySkuId: f.activitySkuIds[0]!, quantity: 1 }], couponIds: [couponId] });
      expect([second.status, second.body.code]).toEqual([409, 'coupon_unavailable']);

      expect(await paymentSucceeded(h.app, order.orderNo, { paymentNo: 'P-c1', amount_fen: 1900, paid_at_ms: h.clock.now() })).toBe('paid');
      await untilQuiet(h);
      expect((await stateOf(buyer, couponId)).state).toBe('used');
    });

    it('a coupon comes back when the order is cancelled or times out, and stays expired if it expired meanwhile', async () => {
      const f = await seedActivity(h.app, { skus: [{ price_fen: 1200, stock: 50 }] });
      const buyer = 97_002;
      const cancelled = await couponFor(buyer);
      const a = await asBuyer(h, buyer).checkout({ leaderId: f.leaderId, items: [{ activitySkuId: f.activitySkuIds[0]!, quantity: 1 }], couponIds: [cancelled] });
      await asBuyer(h, buyer).cancel(a.body.orders[0].orderNo);
      await untilQuiet(h);
      expect((await stateOf(buyer, cancelled)).state).toBe('available');

      const shortLived = await couponFor(buyer, undefined, 10 * 60_000);
      const b = await asBuyer(h, buyer).checkout({ leaderId: f.leaderId, items: [{ activitySkuId: f.activitySkuIds[0]!, quantity: 1 }], couponIds: [shortLived] });
      expect(b.status).toBe(201);
      h.clock.advance(16 * 60_000);
      await untilQuiet(h);
      expect((await getOrder(h.app, b.body.orders[0].orderNo)).status).toBe('CANCELLED');
      const back = await stateOf(buyer, shortLived);
      expect([back.state, back.expired]).toEqual(['available', true]);
      const listed = (await asBuyer(h, buyer).coupons()).body;
      expect(listed.coupons.find((c: any) => c.couponId === shortLived).state).toBe('expired');
      const again = await asBuyer(h, buyer).checkout({ leaderId: f.leaderId, items: [{ activitySkuId: f.activitySkuIds[0]!, quantity: 1 }], couponIds: [shortLived] });
      expect([again.status, again.body.code, again.body.details?.reason]).toEqual([422, 'coupon_not_applicable', 'expired']);
    });

    it('a coupon whose threshold the order does not reach is refused with its reason, and nothing stays held', async () => {
      const f = await seedActivity(h.app, { skus: [{ price_fen: 400, stock: 50 }] });
      const buyer = 97_003;
      const couponId = await couponFor(buyer);
      const refused = await asBuyer(h, buyer).checkout({ leaderId: f.leaderId, items: [{ activitySkuId: f.activitySkuIds[0]!, quantity: 1 }], couponIds: [couponId] });
      expect(refused).toMatchObject({ status: 422, body: { code: 'coupon_not_applicable', field: 'couponIds.0', details: { reason: 'threshold_not_reached' } } });
      expect((await stateOf(buyer, couponId)).state).toBe('available');
      expect((await stockLevels(h.app.db, f.activitySkuIds)).get(f.activitySkuIds[0]!)).toMatchObject({ available: 50, reserved: 0 });
    });

    it('one buyer’s 100 concurrent checkouts never use one coupon twice', async () => {
      const f = await seedActivity(h.app, { skus: [{ price_fen: 1500, stock: 1000 }] });
      const buyer = 97_004;
      const couponId = await couponFor(buyer);
      const results = await Promise.all(
        Array.from({ length: 100 }, () => asBuyer(h, buyer).checkout({ leaderId: f.leaderId, items: [{ activitySkuId: f.activitySkuIds[0]!, quantity: 1 }], couponIds: [couponId] })),
      );
      const placed = results.filter((r) => r.status === 201);
      expect(placed).toHaveLength(1);
      for (const r of results.filter((r) => r.status !== 201)) expect(r.body.code).toBe('coupon_unavailable');
      // The coupon is locked by the checkout, under its number.
      expect((await stateOf(buyer, couponId)).orderNo).toBe(placed[0]!.body.checkoutNo);
      expect((await stockLevels(h.app.db, f.activitySkuIds)).get(f.activitySkuIds[0]!)).toMatchObject({ available: 999, reserved: 1 });
    });

    it('one buyer’s 100 concurrent checkouts never drive points negative', async () => {
      const f = await seedActivity(h.app, { skus: [{ price_fen: 1000, stock: 1000 }] });
      const buyer = 97_005;
      await grantPoints(h.app.db, buyer, 1000, 'welcome-97005', 'welcome', h.clock.now());
      const results = await Promise.all(
        Array.from({ length: 100 }, () => asBuyer(h, buyer).checkout({ leaderId: f.leaderId, items: [{ activitySkuId: f.activitySkuIds[0]!, quantity: 1 }], points: 100 })),
      );
      const placed = results.filter((r) => r.status === 201);
      expect(placed).toHaveLength(10);
      for (const r of placed) expect(r.body).toMatchObject({ pointsUsed: 100, payableFen: 900 });
      for (const r of results.filter((r) => r.status !== 201)) expect(r.body.code).toBe('insufficient_points');
      expect(await pointsAccount(h.app.db, buyer)).toEqual({ balance: 1000, frozen: 1000, available: 0 });
      expect((await stockLevels(h.app.db, f.activitySkuIds)).get(f.activitySkuIds[0]!)).toMatchObject({ reserved: 10 });

      // Paying one deducts its points; cancelling another unfreezes them.
      const [paid, cancelled] = placed as [any, any];
      expect(await paymentSucceeded(h.app, paid.body.orders[0].orderNo, { paymentNo: 'P-pts', amount_fen: 900, paid_at_ms: h.clock.now() })).toBe('paid');
      await asBuyer(h, buyer).cancel(cancelled.body.orders[0].orderNo);
      await untilQuiet(h);
      await untilQuiet(h);
      expect(await pointsAccount(h.app.db, buyer)).toEqual({ balance: 900, frozen: 800, available: 100 });
      const journal = (await asBuyer(h, buyer).points('?limit=100')).body;
      const count = (m: string) => journal.journal.filter((j: any) => j.movement === m).length;
      expect([count('grant'), count('freeze'), count('deduct'), count('unfreeze')]).toEqual([1, 10, 1, 1]);
    });

    it('a cancel racing a payment: coupon and points end as the order ends', async () => {
      const f = await seedActivity(h.app, { skus: [{ price_fen: 3000, stock: 100 }] });
      for (let round = 0; round < 5; round++) {
        const buyer = 97_100 + round;
        await grantPoints(h.app.db, buyer, 500, `race-${buyer}`, 'race', h.clock.now());
        const couponId = await couponFor(buyer);
        const placed = await asBuyer(h, buyer).checkout({ leaderId: f.leaderId, items: [{ activitySkuId: f.activitySkuIds[0]!, quantity: 1 }], couponIds: [couponId], points: 200 });
        expect(placed.status).toBe(201);
        const order = placed.body.orders[0];
        const [, outcome] = await Promise.all([
          asBuyer(h, buyer).cancel(order.orderNo),
          paymentSucceeded(h.app, order.orderNo, { paymentNo: `P-r${round}`, amount_fen: order.payableFen, paid_at_ms: h.clock.now() }),
        ]);
        await untilQuiet(h);
        await untilQuiet(h);
        const coupon = await stateOf(buyer, couponId);
        const points = await pointsAccount(h.app.db, buyer);
        if (outcome === 'paid') {
          expect([coupon.state, points]).toEqual(['used', { balance: 300, frozen: 0, available: 300 }]);
        } else {
          expect([coupon.state, points]).toEqual(['available', { balance: 500, frozen: 0, available: 500 }]);
        }
      }
    });

    it('delivery goes through the merchant’s shipping rule; the lines, shipping share included, add up to the order', async () => {
      const f = await seedActivity(h.app, { skus: [{ price_fen: 700, stock: 100 }, { price_fen: 1300, stock: 100 }] });
      const merchantId = (await h.http.inject({ method: 'GET', url: `/activities/${f.activityId}` })).json().skus[0].merchantId;
      const rule = await asAdmin(h).createShippingRule({ merchantId, handover: 'delivery', charge: { kind: 'by_weight', first_g: 1000, first_fen: 600, additional_g: 1000, additional_fen: 201 }, freeAboveFen: 99_900 });
      expect(rule.status).toBe(201);
      const body = { leaderId: f.leaderId, items: [{ activitySkuId: f.activitySkuIds[0]!, quantity: 3 }, { activitySkuId: f.activitySkuIds[1]!, quantity: 2 }], handover: 'delivery', region: 'SH' };
      const placed = await asBuyer(h, 97_300).checkout(body);
      expect(placed.status).toBe(201);
      expect(placed.body.shippingFen).toBe(600 + 2 * 201); // 5 × 500 g = 2.5 kg
      // One merchant: one order, whose shipping is the checkout's.
      const order = placed.body.orders[0];
      expect([order.shippingFen, order.payableFen]).toEqual([placed.body.shippingFen, placed.body.payableFen]);
      expect(order.lines.reduce((s: number, l: any) => s + l.payableFen, 0)).toBe(order.payableFen);
      expect(order.lines.reduce((s: number, l: any) => s + l.shippingFen, 0)).toBe(order.shippingFen);
      const nowhere = await asBuyer(h, 97_301).checkout({ ...body, region: 'XZ' });
      expect(nowhere.status).toBe(201); // the default rule has no region list: it serves everywhere
      const otherMerchant = await seedActivity(h.app, { skus: [{ price_fen: 100, stock: 10 }] });
      const refused = await asBuyer(h, 97_302).checkout({ leaderId: otherMerchant.leaderId, items: [{ activitySkuId: otherMerchant.activitySkuIds[0]!, quantity: 1 }], handover: 'delivery', region: 'SH' });
      expect([refused.status, refused.body.field]).toEqual([400, 'handover']);
    });

    it('promotions made through the admin API price the checkout and the cart preview alike', async () => {
      const f = await seedActivity(h.app, { skus: [{ price_fen: 1000, stock: 100 }] });
      const now = h.clock.now();
      const made = await asAdmin(h).createPromotion({ name: '满30减5', scope: { kind: 'platform' }, rule: { kind: 'amount_off', threshold_fen: 3000, off_fen: 500 }, startsAt: new Date(now - DAY).toISOString(), endsAt: new Date(now + DAY).toISOString() });
      expect(made.status).toBe(201);
      // Promotions of other merchants, and ones starting next month, hide nothing that is live.
      for (let i = 0; i < 30; i++) {
        await asAdmin(h).createPromotion({ name: `later ${i}`, scope: { kind: 'merchant', merchantId: 9_000 + i }, rule: { kind: 'amount_off', threshold_fen: 100, off_fen: 1 }, startsAt: new Date(now + 30 * DAY).toISOString(), endsAt: new Date(now + 60 * DAY).toISOString() });
      }
      const buyer = 97_200;
      await asBuyer(h, buyer).cart.add(f.activitySkuIds[0], 3);
      const preview = (await asBuyer(h, buyer).cart.preview()).body;
      const placed = await asBuyer(h, buyer).checkout({ leaderId: f.leaderId, items: [{ activitySkuId: f.activitySkuIds[0]!, quantity: 3 }] });
      expect(placed.body.payableFen).toBe(preview.payableFen);
      expect(placed.body.discountTotalFen).toBeGreaterThanOrEqual(500);
      expect(preview.applied.some((a: any) => a.id === made.body.id)).toBe(true);
      // A platform-wide promotion is the platform's money (平台补贴), shown per line, merchant and cart.
      expect(preview.applied.find((a: any) => a.id === made.body.id).funder).toBe('platform');
      expect(preview.lines[0]).toMatchObject({ discountFen: 500, platformFundedFen: 500, merchantFundedFen: 0 });
      expect(preview.merchants[0]).toMatchObject({ discountFen: 500, platformFundedFen: 500, merchantFundedFen: 0 });
      expect([preview.platformFundedFen, preview.merchantFundedFen]).toEqual([500, 0]);
      const body = { name: '满30减5', scope: { kind: 'platform' }, rule: { kind: 'amount_off', threshold_fen: 3000, off_fen: 500 }, startsAt: new Date(now - DAY).toISOString(), endsAt: new Date(now + DAY).toISOString() };
      const disabled = await asAdmin(h).replacePromotion(made.body.id, { ...body, enabled: false });
      expect(disabled.status).toBe(200);
      await untilQuiet(h); // the placed order's cart clearing is done before the line is added again
      await asBuyer(h, buyer).cart.add(f.activitySkuIds[0], 3);
      const after = (await asBuyer(h, buyer).cart.preview()).body;
      expect(after.applied.some((a: any) => a.id === made.body.id)).toBe(false);
    });
  });
}
