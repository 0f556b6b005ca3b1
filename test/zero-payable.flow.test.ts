import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buyerCoupons, createCouponTemplate, issueCoupons } from '../src/coupons/index.ts';
import { getOrder } from '../src/orders/index.ts';
import { availableEngines } from './support/engines.ts';
import { seedActivity, startHarness, stockLedger, type Harness } from './support/harness.ts';
import { asBuyer } from './support/client.ts';
import { untilQuiet } from './support/quiet.ts';

const DAY = 86_400_000;

/**
 * An order with nothing to pay (a coupon covering everything) is paid at checkout without a
 * channel, through the normal transition: order.paid confirms its stock, uses its coupon, and
 * an on-payment line is deducted then. Starting a payment on it is a named 409, never a 500.
 */
for (const engine of availableEngines()) {
  describe(`orders with nothing payable on ${engine.name}`, () => {
    let h: Harness;
    beforeAll(async () => {
      h = await startHarness(engine, { sandbox: {} });
    });
    afterAll(async () => h?.close());

    async function wholeOrderCoupon(buyerId: number, off_fen: number) {
      const now = h.clock.now();
      const template = await createCouponTemplate(
        h.app.db,
        { name: 'free', scope: { kind: 'platform' }, rule: { kind: 'fixed', off_fen, threshold_fen: 0 }, validFrom: new Date(now - DAY).toISOString(), validUntil: new Date(now + DAY).toISOString(), perBuyerLimit: 5 },
        now,
      );
      return (await issueCoupons(h.app.db, template.id, [buyerId], now)).issued[0]!.couponId;
    }
    const startPay = (buyerId: number, orderNo: string) =>
      asBuyer(h, buyerId).startPayment(orderNo, 'alipay', h.app.payments.channels.get('alipay')!.methods[0]!);

    for (const inventoryMode of ['on_order', 'on_payment'] as const) {
      it(`${inventoryMode}: a coupon covering the whole order pays it at checkout; payment start is 409 nothing_payable`, async () => {
        const f = await seedActivity(h.app, { skus: [{ price_fen: 500, stock: 10 }], inventoryMode });
        const sku = f.activitySkuIds[0]!;
        const buyer = inventoryMode === 'on_order' ? 96_101 : 96_102;
        const couponId = await wholeOrderCoupon(buyer, 500);
        const placed = await asBuyer(h, buyer).checkout({ leaderId: f.leaderId, items: [{ activitySkuId: sku, quantity: 1 }], couponIds: [couponId] });
        expect(placed.status).toBe(201);
        // The checkout and its one order are both paid at checkout.
        expect(placed.body).toMatchObject({ payableFen: 0, status: 'PAID' });
        expect(placed.body.orders).toHaveLength(1);
        expect(placed.body.orders[0]).toMatchObject({ payableFen: 0, status: 'PAID' });
        const orderNo = placed.body.orders[0].orderNo as string;
        const pay = await startPay(buyer, orderNo);
        expect([pay.status, pay.body.code]).toEqual([409, 'nothing_payable']);
        await untilQuiet(h);
        expect(await getOrder(h.app, orderNo)).toMatchObject({ status: 'PAID', paid_fen: 0 });
        expect(await stockLedger(h.app, sku)).toMatchObject({ available: 9, reserved: 0, sold: 1 });
        expect((await buyerCoupons(h.app.db, buyer, h.clock.now())).find((c) => c.couponId === couponId)!.state).toBe('used');
        // Past its payment time nothing cancels it: the expire job went with the payment.
        h.clock.advance(16 * 60_000);
        await untilQuiet(h);
        expect((await getOrder(h.app, orderNo)).status).toBe('PAID');
        const refund = await asBuyer(h, buyer).refund(orderNo, undefined, { key: `zero-${buyer}` });
        expect([refund.status, refund.body.code]).toEqual([409, 'refund_not_allowed']);
      });
    }
  });
}
