import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buyerCoupons, createCouponTemplate, issueCoupons } from '../src/coupons/index.ts';
import { deductOnPayment } from '../src/inventory/index.ts';
import { getOrder, paymentSucceeded } from '../src/orders/index.ts';
import { availableEngines } from './support/engines.ts';
import { seedActivity, startHarness, stockLedger, type Harness } from './support/harness.ts';
import { asAdmin, asBuyer, payAtCashier } from './support/client.ts';
import { untilQuiet } from './support/quiet.ts';

for (const engine of availableEngines()) {
  describe(`on-payment inventory mode (支付减库存) on ${engine.name}`, () => {
    let h: Harness;
    beforeAll(async () => {
      h = await startHarness(engine);
    });
    afterAll(async () => h?.close());

    const level = (activitySkuId: number) => stockLedger(h.app, activitySkuId);
    const pay = (orderNo: string, amount_fen: number, paymentNo = `P-${orderNo}`) => paymentSucceeded(h.app, orderNo, { paymentNo, amount_fen, paid_at_ms: h.clock.now() });

    it('checks at checkout, deducts at payment; a payment after the stock ran out closes the order and asks for a refund', async () => {
      const f = await seedActivity(h.app, { skus: [{ price_fen: 900, stock: 1 }], inventoryMode: 'on_payment' });
      const sku = f.activitySkuIds[0]!;
      const now = h.clock.now();
      const template = await createCouponTemplate(h.app.db, { name: 'c', scope: { kind: 'platform' }, rule: { kind: 'fixed', off_fen: 100, threshold_fen: 0 }, validFrom: new Date(now - 1000).toISOString(), validUntil: new Date(now + 86_400_000).toISOString(), perBuyerLimit: 1 }, now);
      const couponId = (await issueCoupons(h.app.db, template.id, [99_701], now)).issued[0]!.couponId;

      const first = await asBuyer(h, 99_700).checkout({ leaderId: f.leaderId, items: [{ activitySkuId: sku, quantity: 1 }] });
      const second = await asBuyer(h, 99_701).checkout({ leaderId: f.leaderId, items: [{ activitySkuId: sku, quantity: 1 }], couponIds: [couponId] });
      expect([first.status, second.status]).toEqual([201, 201]);
      // One merchant: each checkout is one order.
      const [firstOrder, secondOrder] = [first.body.orders[0], second.body.orders[0]];
      expect(firstOrder.lines[0].inventoryMode).toBe('on_payment');
      expect(await level(sku)).toMatchObject({ available: 1, reserved: 0, sold: 0 });

      expect(await pay(firstOrder.orderNo, 900)).toBe('paid');
      expect(await level(sku)).toMatchObject({ available: 0, sold: 1 });
      expect(await pay(secondOrder.orderNo, 800)).toBe('stock_unavailable');
      await untilQuiet(h);
      expect(await getOrder(h.app, secondOrder.orderNo)).toMatchObject({ status: 'CANCELLED', cancelReason: 'sold_out_at_payment' });
      expect((await buyerCoupons(h.app.db, 99_701, h.clock.now())).find((c) => c.couponId === couponId)!.state).toBe('available');
      expect(await level(sku)).toMatchObject({ available: 0, sold: 1 });

      // A checkout when nothing is left is refused at once.
      const third = await asBuyer(h, 99_702).checkout({ leaderId: f.leaderId, items: [{ activitySkuId: sku, quantity: 1 }] });
      expect(third.body).toMatchObject({ code: 'insufficient_stock', field: 'items.0.quantity' });
    });

    it('the same payment delivered 5 times at once deducts once', async () => {
      const f = await seedActivity(h.app, { skus: [{ price_fen: 500, stock: 10 }], inventoryMode: 'on_payment' });
      const placed = await asBuyer(h, 99_710).checkout({ leaderId: f.leaderId, items: [{ activitySkuId: f.activitySkuIds[0]!, quantity: 3 }] });
      const outcomes = await Promise.all(Array.from({ length: 5 }, () => pay(placed.body.orders[0].orderNo, 1500, 'P-same')));
      expect(outcomes.filter((o) => o === 'paid')).toHaveLength(1);
      expect(outcomes.filter((o) => o === 'already_paid')).toHaveLength(4);
      expect(await level(f.activitySkuIds[0]!)).toMatchObject({ available: 7, sold: 3 });
    });

    it('a cancel racing a payment leaves the units sold only if the order is paid', async () => {
      for (let round = 0; round < 5; round++) {
        const f = await seedActivity(h.app, { skus: [{ price_fen: 500, stock: 10 }], inventoryMode: 'on_payment' });
        const sku = f.activitySkuIds[0]!;
        const buyer = 99_720 + round;
        const placed = await asBuyer(h, buyer).checkout({ leaderId: f.leaderId, items: [{ activitySkuId: sku, quantity: 2 }] });
        const orderNo = placed.body.orders[0].orderNo as string;
        const [, outcome] = await Promise.all([
          asBuyer(h, buyer).cancel(orderNo),
          pay(orderNo, 1000),
        ]);
        await untilQuiet(h);
        const order = await getOrder(h.app, orderNo);
        if (outcome === 'paid') {
          expect(order.status).toBe('PAID');
          expect(await level(sku)).toMatchObject({ available: 8, sold: 2 });
        } else {
          expect([outcome, order.status]).toEqual(['order_cancelled', 'CANCELLED']);
          expect(await level(sku)).toMatchObject({ available: 10, sold: 0 });
        }
      }
    });

    it('units a payment deducted come back if the order ends cancelled anyway (crash between deduction and PAID)', async () => {
      const f = await seedActivity(h.app, { skus: [{ price_fen: 500, stock: 10 }], inventoryMode: 'on_payment' });
      const sku = f.activitySkuIds[0]!;
      const placed = await asBuyer(h, 99_740).checkout({ leaderId: f.leaderId, items: [{ activitySkuId: sku, quantity: 2 }] });
      // A payment deducts under the checkout number, where every hold of the checkout is kept.
      const orderNo = placed.body.orders[0].orderNo as string;
      await deductOnPayment(h.app.db, placed.body.checkoutNo, [{ activitySkuId: sku, quantity: 2 }], h.clock.now()); // then the process dies
      expect(await level(sku)).toMatchObject({ available: 8, sold: 2 });
      h.clock.advance(16 * 60_000);
      await untilQuiet(h);
      expect((await getOrder(h.app, orderNo)).status).toBe('CANCELLED');
      expect(await level(sku)).toMatchObject({ available: 10, sold: 0 });
      expect(await pay(orderNo, 1000)).toBe('order_cancelled');
      expect(await level(sku)).toMatchObject({ available: 10, sold: 0 });
    });

    it('refuses stock-linked prices on on-payment activities', async () => {
      const f = await seedActivity(h.app, { skus: [{ price_fen: 500, stock: 10 }] });
      const made = await asAdmin(h).updateActivitySku(f.activitySkuIds[0]!, { activityPriceUnits: 3 });
      expect(made.status).toBe(200);
      const switched = await asAdmin(h).updateActivity(f.activityId, { inventoryMode: 'on_payment' });
      expect([switched.status, switched.body.field]).toEqual([400, 'inventoryMode']);
    });

    it('a cart mixing both modes reserves one at checkout and deducts the other at payment', async () => {
      const reserved = await seedActivity(h.app, { skus: [{ price_fen: 300, stock: 10 }] });
      const deducted = await seedActivity(h.app, { skus: [{ price_fen: 700, stock: 10 }], inventoryMode: 'on_payment' });
      const placed = await asBuyer(h, 99_730).checkout({ leaderId: reserved.leaderId, items: [{ activitySkuId: reserved.activitySkuIds[0]!, quantity: 1 }, { activitySkuId: deducted.activitySkuIds[0]!, quantity: 1 }] });
      expect(placed.status).toBe(201);
      // Each seedActivity has its own merchant, so the cart is split into two orders (拆单), one per mode.
      expect(placed.body.payableFen).toBe(1000);
      expect(placed.body.orders.map((o: any) => o.lines.map((l: any) => [l.inventoryMode, l.payableFen])).sort()).toEqual([[['on_order', 300]], [['on_payment', 700]]]);
      expect(await level(reserved.activitySkuIds[0]!)).toMatchObject({ reserved: 1 });
      expect(await level(deducted.activitySkuIds[0]!)).toMatchObject({ reserved: 0, sold: 0 });
      for (const order of placed.body.orders) expect(await pay(order.orderNo, order.payableFen)).toBe('paid');
      await untilQuiet(h);
      expect(await level(reserved.activitySkuIds[0]!)).toMatchObject({ reserved: 0, sold: 1 });
      expect(await level(deducted.activitySkuIds[0]!)).toMatchObject({ available: 9, sold: 1 });
    });
  });
  describe(`on-payment units and refunds through the channel sandbox on ${engine.name}`, () => {
    let h: Harness;
    beforeAll(async () => {
      h = await startHarness(engine, { sandbox: {} });
    });
    afterAll(async () => h?.close());

    it('a refunded on-payment line gives the units its payment deducted back to the activity', async () => {
      const f = await seedActivity(h.app, { skus: [{ price_fen: 500, stock: 10 }], inventoryMode: 'on_payment' });
      const sku = f.activitySkuIds[0]!;
      const buyer = asBuyer(h, 99_750);
      const placed = await buyer.checkout({ leaderId: f.leaderId, items: [{ activitySkuId: sku, quantity: 2 }] });
      expect(placed.status).toBe(201);
      const orderNo = placed.body.orders[0].orderNo as string;
      const started = await buyer.startPayment(orderNo, 'alipay');
      expect(started.status).toBe(201);
      expect(await payAtCashier(h, 'alipay', started.body.payNo)).toBe(200);
      await h.sandbox!.core.untilDelivered();
      await untilQuiet(h);
      expect(await getOrder(h.app, orderNo)).toMatchObject({ status: 'PAID' });
      expect(await stockLedger(h.app, sku)).toMatchObject({ available: 8, reserved: 0, sold: 2 });

      const refund = await asAdmin(h).refund(orderNo);
      expect(refund.status).toBe(201);
      await h.sandbox!.core.untilDelivered();
      await untilQuiet(h);
      expect(await getOrder(h.app, orderNo)).toMatchObject({ status: 'REFUNDED' });
      expect(await stockLedger(h.app, sku)).toMatchObject({ available: 10, reserved: 0, sold: 0 });
    });
  });
}
