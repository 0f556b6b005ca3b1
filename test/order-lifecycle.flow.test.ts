import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reservationsOf } from '../src/inventory/index.ts';
import { runDueJobs } from '../src/jobs/index.ts';
import { expireCheckout, expireOrder, getOrder, paymentSucceeded, purchasedQuantity } from '../src/orders/index.ts';
import { slotOfOrderNo } from '../src/platform/shards.ts';
import { availableEngines } from './support/engines.ts';
import { seedActivity, startHarness, stockLedger, TestClock, type Harness } from './support/harness.ts';
import { asBuyer } from './support/client.ts';
import { untilQuiet } from './support/quiet.ts';

const TIMEOUT_MS = 15 * 60_000;

for (const engine of availableEngines()) {
  describe(`order lifecycle on ${engine.name}`, () => {
    let h: Harness;
    beforeAll(async () => {
      h = await startHarness(engine, { paymentTimeout_ms: TIMEOUT_MS });
    });
    afterAll(async () => h?.close());

    async function placeOrder(buyerId: number, quantity = 2, stock = 100) {
      const f = await seedActivity(h.app, { skus: [{ price_fen: 1234, stock, purchaseLimit: 10 }] });
      const placed = await asBuyer(h, buyerId).checkout({ leaderId: f.leaderId, items: [{ activitySkuId: f.activitySkuIds[0]!, quantity }] });
      expect(placed.status).toBe(201);
      // One merchant: the checkout is one order; holds are kept under the checkout number.
      expect(placed.body.orders).toHaveLength(1);
      const order = placed.body.orders[0];
      return { orderNo: order.orderNo as string, checkoutNo: placed.body.checkoutNo as string, sku: f.activitySkuIds[0]!, payable_fen: order.payableFen as number };
    }

    const level = (activitySkuId: number) => stockLedger(h.app, activitySkuId);

    it('the timeout cancels an unpaid order and returns its stock', async () => {
      const { orderNo, sku } = await placeOrder(80_001);
      await untilQuiet(h);
      expect((await getOrder(h.app, orderNo)).status).toBe('PENDING_PAYMENT');
      h.clock.advance(TIMEOUT_MS + 1);
      await untilQuiet(h);
      const order = await getOrder(h.app, orderNo);
      expect(order).toMatchObject({ status: 'CANCELLED', cancelReason: 'payment_timeout', version: 1 });
      expect(await level(sku)).toMatchObject({ available: 100, reserved: 0, sold: 0 });
      expect(await purchasedQuantity(h.app.shards.forBuyer(80_001), 80_001, sku)).toBe(0);
    });

    it('timeout and buyer cancel racing: one wins, stock is released once', async () => {
      for (let round = 0; round < 10; round++) {
        const buyer = 81_000 + round;
        const { orderNo, checkoutNo, sku } = await placeOrder(buyer, 3);
        h.clock.advance(TIMEOUT_MS + 1);
        const shard = h.app.shards.forOrderNo(orderNo)!;
        const [cancel, expired] = await Promise.all([
          asBuyer(h, buyer).cancel(orderNo),
          expireOrder(h.app, orderNo),
          runDueJobs(shard, { handlers: { 'order.expire': async (p: { checkoutNo: string }) => void (await expireCheckout(h.app, p.checkoutNo)) }, owner: 'racer', now: h.clock.now, onError: () => {} }),
        ]);
        const buyerWon = cancel.status === 200;
        if (!buyerWon) expect(['order_state_conflict', 'order_not_cancellable']).toContain(cancel.body.code);
        expect(expired === 'cancelled').toBe(!buyerWon && expired === 'cancelled');
        await untilQuiet(h);
        const order = await getOrder(h.app, orderNo);
        expect(order.status).toBe('CANCELLED');
        expect(order.version).toBe(1);
        expect(order.cancelReason).toBe(buyerWon ? 'buyer_cancelled' : 'payment_timeout');
        expect(await level(sku)).toMatchObject({ total: 100, available: 100, reserved: 0, sold: 0 });
        expect(await reservationsOf(h.app.db, checkoutNo)).toEqual([{ activitySkuId: sku, quantity: 3, state: 'released' }]);
        expect(await purchasedQuantity(h.app.shards.forBuyer(buyer), buyer, sku)).toBe(0);
      }
    });

    it('paymentSucceeded delivered 5 times at once: one transition, stock confirmed once', async () => {
      const { orderNo, checkoutNo, sku, payable_fen } = await placeOrder(82_001, 4);
      const payment = { paymentNo: 'P-1', amount_fen: payable_fen, paid_at_ms: h.clock.now() };
      const outcomes = await Promise.all(Array.from({ length: 5 }, () => paymentSucceeded(h.app, orderNo, payment)));
      expect(outcomes.filter((o) => o === 'paid')).toHaveLength(1);
      expect(outcomes.filter((o) => o === 'already_paid')).toHaveLength(4);
      await untilQuiet(h);
      expect(await getOrder(h.app, orderNo)).toMatchObject({ status: 'PAID', version: 1, paymentNo: 'P-1', paid_fen: payable_fen });
      expect(await level(sku)).toMatchObject({ available: 96, reserved: 0, sold: 4 });
      expect(await reservationsOf(h.app.db, checkoutNo)).toEqual([{ activitySkuId: sku, quantity: 4, state: 'confirmed' }]);

      // Once paid, the timeout does nothing and the buyer can no longer cancel.
      h.clock.advance(TIMEOUT_MS + 1);
      await untilQuiet(h);
      expect((await getOrder(h.app, orderNo)).status).toBe('PAID');
      const cancel = await asBuyer(h, 82_001).cancel(orderNo);
      expect([cancel.status, cancel.body.code]).toEqual([409, 'order_not_cancellable']);

      // A second, different payment for a paid order is a duplicate for the payment centre to refund.
      expect(await paymentSucceeded(h.app, orderNo, { ...payment, paymentNo: 'P-2' })).toBe('duplicate_payment');
      await untilQuiet(h);
      expect(await level(sku)).toMatchObject({ available: 96, reserved: 0, sold: 4 });
    });

    it('a payment for a cancelled order, or for the wrong amount, changes nothing', async () => {
      const { orderNo, sku, payable_fen } = await placeOrder(83_001, 1);
      expect(await paymentSucceeded(h.app, orderNo, { paymentNo: 'P-x', amount_fen: payable_fen - 1, paid_at_ms: h.clock.now() })).toBe('amount_mismatch');
      expect((await getOrder(h.app, orderNo)).status).toBe('PENDING_PAYMENT');
      const cancel = await asBuyer(h, 83_001).cancel(orderNo);
      expect(cancel.status).toBe(200);
      expect(await paymentSucceeded(h.app, orderNo, { paymentNo: 'P-late', amount_fen: payable_fen, paid_at_ms: h.clock.now() })).toBe('order_cancelled');
      await untilQuiet(h);
      expect((await getOrder(h.app, orderNo)).status).toBe('CANCELLED');
      expect(await level(sku)).toMatchObject({ available: 100, reserved: 0, sold: 0 });
    });

    it('a buyer cancel and a payment racing: exactly one of them takes effect', async () => {
      for (let round = 0; round < 5; round++) {
        const buyer = 84_000 + round;
        const { orderNo, sku, payable_fen } = await placeOrder(buyer, 2);
        const [cancel, outcome] = await Promise.all([
          asBuyer(h, buyer).cancel(orderNo),
          paymentSucceeded(h.app, orderNo, { paymentNo: `P-race-${round}`, amount_fen: payable_fen, paid_at_ms: h.clock.now() }),
        ]);
        await untilQuiet(h);
        const order = await getOrder(h.app, orderNo);
        expect(order.version).toBe(1);
        if (outcome === 'paid') {
          expect(cancel.status).toBe(409);
          expect(order.status).toBe('PAID');
          expect(await level(sku)).toMatchObject({ available: 98, reserved: 0, sold: 2 });
        } else {
          expect(outcome).toBe('order_cancelled');
          expect(cancel.status).toBe(200);
          expect(order.status).toBe('CANCELLED');
          expect(await level(sku)).toMatchObject({ available: 100, reserved: 0, sold: 0 });
        }
      }
    });

    it('the timeout job survives a restart', async () => {
      const { orderNo, sku } = await placeOrder(85_001, 5);
      await h.close({ keepDatabases: true });
      const clock = new TestClock();
      clock.offset_ms = h.clock.offset_ms + TIMEOUT_MS + 1;
      h = await startHarness(engine, { databases: h.databases, clock, paymentTimeout_ms: TIMEOUT_MS });
      await untilQuiet(h);
      expect(await getOrder(h.app, orderNo)).toMatchObject({ status: 'CANCELLED', cancelReason: 'payment_timeout' });
      expect(await level(sku)).toMatchObject({ available: 100, reserved: 0 });
    });

    it('order numbers carry the buyer’s shard gene and are time-ordered', async () => {
      const first = await placeOrder(86_001, 1);
      const second = await placeOrder(86_001 + 1024, 1);
      expect(slotOfOrderNo(first.orderNo)).toBe(86_001 % 1024);
      expect(slotOfOrderNo(second.orderNo)).toBe(86_001 % 1024);
      expect(second.orderNo > first.orderNo).toBe(true);
      // The checkout number the holds and jobs are kept under carries the same gene.
      expect(slotOfOrderNo(first.checkoutNo)).toBe(86_001 % 1024);
      expect(second.checkoutNo > first.checkoutNo).toBe(true);
    });
  });
}

describe('orders sharded by buyer over two databases', () => {
  it('puts each buyer’s orders on the shard their gene names, and finds them from the order number alone', async () => {
    const engine = availableEngines()[0]!;
    const h = await startHarness(engine, { shards: 2 });
    try {
      const f = await seedActivity(h.app, { skus: [{ price_fen: 100, stock: 100 }] });
      const low = 1; // slot 1 → shard 0
      const high = 1000; // slot 1000 → shard 1
      const a = await asBuyer(h, low).checkout({ leaderId: f.leaderId, items: [{ activitySkuId: f.activitySkuIds[0]!, quantity: 1 }] });
      const b = await asBuyer(h, high).checkout({ leaderId: f.leaderId, items: [{ activitySkuId: f.activitySkuIds[0]!, quantity: 1 }] });
      const [shard0, shard1] = h.app.shards.databases as [any, any];
      expect(shard0).not.toBe(shard1);
      const on = async (db: any) => (await db.selectFrom('orders').select('order_no').execute()).map((r: any) => r.order_no);
      const orderOfA = a.body.orders[0].orderNo as string;
      const orderOfB = b.body.orders[0].orderNo as string;
      expect(await on(shard0)).toEqual([orderOfA]);
      expect(await on(shard1)).toEqual([orderOfB]);
      const read = await asBuyer(h, high).order(orderOfB);
      expect(read.body.orderNo).toBe(orderOfB);
      h.clock.advance(16 * 60_000);
      await untilQuiet(h);
      expect((await getOrder(h.app, orderOfB)).status).toBe('CANCELLED');
    } finally {
      await h.close();
    }
  });
});
