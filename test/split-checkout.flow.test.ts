import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reservationsOf } from '../src/inventory/index.ts';
import { getCheckout, getOrder } from '../src/orders/index.ts';
import { findPayment, paymentsOfOrder, refundsOfOrder, type ChannelName } from '../src/payments/index.ts';
import { pointsAccount } from '../src/points/index.ts';
import { grantPoints } from '../src/points/index.ts';
import { buyerCoupons, createCouponTemplate, issueCoupons } from '../src/coupons/index.ts';
import { availableEngines } from './support/engines.ts';
import { channelAccountsOf, newKey, seedMerchants, startHarness, stockLedger, writtenRows, type Harness, type MerchantFixture } from './support/harness.ts';
import { asAdmin, asBuyer, payAtCashier } from './support/client.ts';
import { untilQuiet } from './support/quiet.ts';

const DAY = 86_400_000;

/**
 * 拆单 and 合单支付 on every engine, with the channel sandbox: a cart of several merchants is one
 * checkout of one order per merchant, paid once with a sub-payment per order, each landing with its
 * merchant at the channel (二清: never the platform's account). Before payment the checkout moves as
 * one; after it every order lives on its own.
 */
for (const engine of availableEngines()) {
  describe(`one checkout, one order per merchant, one payment on ${engine.name}`, () => {
    let h: Harness;
    let buyer = 88_000;
    beforeAll(async () => {
      h = await startHarness(engine, { sandbox: {} });
    });
    afterAll(async () => h?.close());

    const threeMerchants = () =>
      seedMerchants(h.app, [
        { name: 'Orchard', skus: [{ price_fen: 1200, stock: 20 }, { price_fen: 800, stock: 20 }] },
        { name: 'Dairy', skus: [{ price_fen: 1500, stock: 20 }] },
        { name: 'Bakery', skus: [{ price_fen: 650, stock: 20 }] },
      ]);
    const everyLine = (f: MerchantFixture, quantity = 1) => f.merchants.flatMap((m) => m.activitySkuIds.map((activitySkuId) => ({ activitySkuId, quantity })));

    async function checkoutAll(f: MerchantFixture, extra: Record<string, unknown> = {}) {
      const buyerId = ++buyer;
      const placed = await asBuyer(h, buyerId).checkout({ leaderId: f.leaderId, items: everyLine(f), ...extra });
      expect(placed.status, JSON.stringify(placed.body)).toBe(201);
      return { buyerId, placed, checkoutNo: placed.body.checkoutNo as string, orderNos: (placed.body.orders as { orderNo: string }[]).map((o) => o.orderNo) };
    }

    /** The method each channel pays a combined payment with in these tests (Alipay merges by page, H5 or app; H5's merge is made before the buyer's browser arrives). */
    const methodFor = (channel: ChannelName) => (channel === 'alipay' ? 'h5' : 'qr');

    for (const channel of ['wechat', 'alipay', 'unionpay', 'ccb'] as const) {
      it(`${channel}: a three-merchant cart is three orders and one payment; each sub-payment is its order's payable, for its merchant`, async () => {
        const f = await threeMerchants();
        const { buyerId, placed, checkoutNo, orderNos } = await checkoutAll(f);
        expect(orderNos).toHaveLength(3);
        const orders = placed.body.orders as { orderNo: string; checkoutNo: string; merchantId: number; payableFen: number; lines: { merchantId: number }[] }[];
        expect(orders.map((o) => o.merchantId)).toEqual(f.merchants.map((m) => m.merchantId));
        for (const order of orders) {
          expect(order.checkoutNo).toBe(checkoutNo);
          expect(order.lines.every((l) => l.merchantId === order.merchantId)).toBe(true);
        }
        expect(orders.reduce((sum, o) => sum + o.payableFen, 0)).toBe(placed.body.payableFen);
        // The replay of the submission answers with the same checkout and its orders.
        expect(placed.body).toMatchObject({ status: 'PENDING_PAYMENT', payableFen: 1200 + 800 + 1500 + 650 });

        const started = await asBuyer(h, buyerId).startPayment(orderNos[1]!, channel, methodFor(channel));
        expect(started.status, JSON.stringify(started.body)).toBe(201);
        expect(started.body).toMatchObject({ checkoutNo, channel, amountFen: placed.body.payableFen });
        expect(started.body.combineNo).toBe(started.body.payNo);
        const subs = started.body.subPayments as { payNo: string; orderNo: string; amountFen: number; subMerchantId: string }[];
        expect(subs.map((s) => s.orderNo).sort()).toEqual([...orderNos].sort());
        for (const sub of subs) {
          const order = orders.find((o) => o.orderNo === sub.orderNo)!;
          expect(sub.amountFen).toBe(order.payableFen);
          expect(sub.subMerchantId).toBe(channelAccountsOf(order.merchantId)[channel]);
        }
        // Another order of the same checkout shows the same attempt: it pays the checkout.
        expect((await asBuyer(h, buyerId).startCheckoutPayment(checkoutNo, channel, methodFor(channel))).body.payNo).toBe(started.body.payNo);

        expect(await payAtCashier(h, channel, started.body.payNo)).toBe(200);
        await untilQuiet(h);
        let paid = 0;
        for (const sub of subs) {
          const order = await getOrder(h.app, sub.orderNo);
          expect(order).toMatchObject({ status: 'PAID', paymentNo: sub.payNo, paid_fen: sub.amountFen });
          paid += order.paid_fen!;
          // Each sub-payment is a trade of its own at the channel, for its merchant.
          const trade = h.sandbox!.core.trade(channel, sub.payNo)!;
          expect(trade).toMatchObject({ state: 'SUCCESS', amount_fen: sub.amountFen, combineNo: started.body.payNo, subMerchantId: sub.subMerchantId });
        }
        expect(paid).toBe(placed.body.payableFen);
      });
    }

    it('a checkout of several merchants is refused, writing nothing, by a method the channel merges lack or past its most sub-orders', async () => {
      const f = await threeMerchants();
      const { buyerId, orderNos } = await checkoutAll(f);
      await untilQuiet(h);
      const before = await writtenRows(h.app);
      const qr = await asBuyer(h, buyerId).startPayment(orderNos[0]!, 'alipay', 'qr');
      expect([qr.status, qr.body.code, qr.body.details]).toEqual([422, 'pay_method_not_supported', { methods: ['page', 'h5', 'app'] }]);
      expect(await writtenRows(h.app)).toEqual(before);

      // UnionPay splits one consume over UNIONPAY_MAX_SUB_ORDERS (5) merchants at most: five pay, six are refused.
      const five = await seedMerchants(h.app, [1, 2, 3, 4, 5].map((i) => ({ name: `Stall ${i}`, skus: [{ price_fen: 100 * i, stock: 5 }] })));
      const atCap = await checkoutAll(five);
      expect((await asBuyer(h, atCap.buyerId).startPayment(atCap.orderNos[0]!, 'unionpay', 'qr')).status).toBe(201);
      const six = await seedMerchants(h.app, [1, 2, 3, 4, 5, 6].map((i) => ({ name: `Stall ${i}`, skus: [{ price_fen: 100 * i, stock: 5 }] })));
      const past = await checkoutAll(six);
      await untilQuiet(h);
      const beforeSix = await writtenRows(h.app);
      const refused = await asBuyer(h, past.buyerId).startPayment(past.orderNos[0]!, 'unionpay', 'qr');
      expect([refused.status, refused.body.code, refused.body.details]).toEqual([422, 'too_many_merchants', { channel: 'unionpay', merchants: 6, maxSubOrders: 5 }]);
      expect(await writtenRows(h.app)).toEqual(beforeSix);
    });

    it('a one-merchant checkout pays as a single trade, under its merchant', async () => {
      const f = await seedMerchants(h.app, [{ name: 'Solo', skus: [{ price_fen: 990, stock: 5 }] }]);
      const { buyerId, orderNos } = await checkoutAll(f);
      const started = await asBuyer(h, buyerId).startPayment(orderNos[0]!, 'wechat', 'qr');
      expect(started.body).toMatchObject({ combineNo: null, orderNo: orderNos[0], amountFen: 990 });
      expect(h.sandbox!.core.trade('wechat', started.body.payNo)).toMatchObject({ combineNo: undefined, subMerchantId: channelAccountsOf(f.merchants[0]!.merchantId).wechat });
    });

    it('a checkout timeout cancels all three orders and returns every hold once', async () => {
      const f = await threeMerchants();
      const buyerId = ++buyer;
      const now = h.clock.now();
      await grantPoints(h.app.db, buyerId, 1000, `split-${buyerId}`, 'test', now);
      const template = await createCouponTemplate(
        h.app.db,
        { name: '3 off', scope: { kind: 'platform' }, rule: { kind: 'fixed', off_fen: 300, threshold_fen: 1000 }, validFrom: new Date(now - DAY).toISOString(), validUntil: new Date(now + DAY).toISOString(), perBuyerLimit: 1 },
        now,
      );
      const couponId = (await issueCoupons(h.app.db, template.id, [buyerId], now)).issued[0]!.couponId;
      const placed = await asBuyer(h, buyerId).checkout({ leaderId: f.leaderId, items: everyLine(f), couponIds: [couponId], points: 500 });
      expect(placed.status, JSON.stringify(placed.body)).toBe(201);
      const checkoutNo = placed.body.checkoutNo as string;
      expect(placed.body.orders).toHaveLength(3);
      expect((await pointsAccount(h.app.db, buyerId)).frozen).toBe(500);
      expect((await buyerCoupons(h.app.db, buyerId, h.clock.now())).find((c) => c.couponId === couponId)!.state).toBe('locked');
      const skus = f.merchants.flatMap((m) => m.activitySkuIds);
      for (const sku of skus) expect(await stockLedger(h.app, sku)).toMatchObject({ reserved: 1, available: 19 });
      // A payment opened and never paid is closed at its channel with the checkout.
      const started = await asBuyer(h, buyerId).startPayment(placed.body.orders[0].orderNo, 'wechat', 'qr');
      expect(started.status).toBe(201);

      h.clock.advance(h.app.paymentTimeout_ms + 61_000);
      await untilQuiet(h);
      const after = await getCheckout(h.app, checkoutNo);
      expect(after.orders.map((o) => [o.status, o.cancelReason])).toEqual([
        ['CANCELLED', 'payment_timeout'],
        ['CANCELLED', 'payment_timeout'],
        ['CANCELLED', 'payment_timeout'],
      ]);
      for (const sku of skus) expect(await stockLedger(h.app, sku)).toMatchObject({ reserved: 0, available: 20, sold: 0 });
      expect((await reservationsOf(h.app.db, checkoutNo)).every((r) => r.state === 'released')).toBe(true);
      expect(await pointsAccount(h.app.db, buyerId)).toEqual({ balance: 1000, frozen: 0, available: 1000 });
      expect((await buyerCoupons(h.app.db, buyerId, h.clock.now())).find((c) => c.couponId === couponId)!.state).toBe('available');
      for (const sub of started.body.subPayments as { payNo: string }[]) expect(h.sandbox!.core.trade('wechat', sub.payNo)!.state).toBe('CLOSED');
    });

    it('a buyer cancelling one order cancels its whole unpaid checkout; a paid checkout is not cancelled', async () => {
      const f = await threeMerchants();
      const { buyerId, checkoutNo, orderNos } = await checkoutAll(f);
      const cancelled = await asBuyer(h, buyerId).cancel(orderNos[2]!);
      expect(cancelled.status).toBe(200);
      expect((await getCheckout(h.app, checkoutNo)).orders.every((o) => o.status === 'CANCELLED')).toBe(true);

      const second = await checkoutAll(f);
      const started = await asBuyer(h, second.buyerId).startPayment(second.orderNos[0]!, 'wechat', 'qr');
      await payAtCashier(h, 'wechat', started.body.payNo);
      await untilQuiet(h);
      const refused = await asBuyer(h, second.buyerId).cancel(second.orderNos[1]!);
      expect([refused.status, refused.body.code]).toEqual([409, 'order_not_cancellable']);
    });

    it('a combined callback twice at once, then again late: each order paid once', async () => {
      const f = await threeMerchants();
      const { buyerId, orderNos } = await checkoutAll(f);
      const started = await asBuyer(h, buyerId).startPayment(orderNos[0]!, 'wechat', 'qr');
      h.sandbox!.core.setFaults({ duplicate: 1 });
      await payAtCashier(h, 'wechat', started.body.payNo);
      await untilQuiet(h);
      const combined = h.sandbox!.core.combined('wechat', started.body.payNo)!;
      const trades = h.sandbox!.core.tradesOf(combined);
      // The late one: the same notice sent again, a minute on.
      h.clock.advance(60_000);
      h.sandbox!.core.renotify({ kind: 'combined_paid', trade: trades[0]!, combined, trades });
      await untilQuiet(h);
      for (const orderNo of orderNos) {
        const order = await getOrder(h.app, orderNo);
        // Pending → paid is one transition.
        expect([order.status, order.version]).toEqual(['PAID', 1]);
        const attempts = await paymentsOfOrder(h.app.shards.forOrderNo(orderNo)!, orderNo);
        expect(attempts.map((a) => [a.status, a.disposition])).toEqual([['SUCCEEDED', 'applied']]);
        expect(await refundsOfOrder(h.app.shards.forOrderNo(orderNo)!, orderNo)).toEqual([]);
      }
    });

    it('a checkout paid on WeChat and again on Alipay: every duplicated sub-order is refunded once, in full', async () => {
      const f = await threeMerchants();
      const { buyerId, orderNos } = await checkoutAll(f);
      const wechat = await asBuyer(h, buyerId).startPayment(orderNos[0]!, 'wechat', 'qr');
      // The buyer is still at WeChat's cashier when switching: WeChat's close does not take.
      h.clock.advance(61_000);
      h.sandbox!.core.setFaults({ keepPayableOnClose: 1 });
      const alipay = await asBuyer(h, buyerId).startPayment(orderNos[0]!, 'alipay', 'h5');
      expect(alipay.status, JSON.stringify(alipay.body)).toBe(201);
      expect(await payAtCashier(h, 'alipay', alipay.body.payNo)).toBe(200);
      expect(await payAtCashier(h, 'wechat', wechat.body.payNo)).toBe(200);
      await untilQuiet(h);
      h.clock.advance(20_000);
      await untilQuiet(h);
      for (const orderNo of orderNos) {
        const order = await getOrder(h.app, orderNo);
        expect(order.status).toBe('PAID');
        const shard = h.app.shards.forOrderNo(orderNo)!;
        const attempts = await paymentsOfOrder(shard, orderNo);
        const applied = attempts.filter((a) => a.disposition === 'applied');
        const duplicate = attempts.filter((a) => a.disposition === 'duplicate_payment');
        expect([applied.length, duplicate.length], orderNo).toEqual([1, 1]);
        expect(order.paymentNo).toBe(applied[0]!.payNo);
        const refunds = await refundsOfOrder(shard, orderNo);
        expect(refunds.map((r) => [r.payNo, r.status, r.reason, r.amount_fen])).toEqual([[duplicate[0]!.payNo, 'SUCCEEDED', 'duplicate_payment', order.payable_fen]]);
        expect(await findPayment(shard, duplicate[0]!.payNo)).toMatchObject({ status: 'REFUNDED', refunded_fen: order.payable_fen });
      }
    });

    it('switching away from a WeChat combined payment within its first minute is refused (WeChat will not close it yet); after it, the old one is closed', async () => {
      const f = await threeMerchants();
      const { buyerId, orderNos } = await checkoutAll(f);
      const wechat = await asBuyer(h, buyerId).startPayment(orderNos[0]!, 'wechat', 'qr');
      const early = await asBuyer(h, buyerId).startPayment(orderNos[0]!, 'alipay', 'h5');
      expect([early.status, early.body.code, early.body.details]).toEqual([409, 'payment_switch_too_early', { payNo: wechat.body.payNo, channel: 'wechat' }]);
      const subs = wechat.body.subPayments as { payNo: string }[];
      for (const sub of subs) expect(h.sandbox!.core.trade('wechat', sub.payNo)!.state).toBe('WAIT_BUYER_PAY');
      h.clock.advance(61_000);
      const later = await asBuyer(h, buyerId).startPayment(orderNos[0]!, 'alipay', 'h5');
      expect(later.status, JSON.stringify(later.body)).toBe(201);
      for (const sub of subs) {
        expect(h.sandbox!.core.trade('wechat', sub.payNo)!.state).toBe('CLOSED');
        expect(await findPayment(h.app.shards.forOrderNo(orderNos[0]!)!, sub.payNo)).toMatchObject({ status: 'CLOSED' });
      }
    });

    it("a refund of one line of one merchant's order touches only that sub-order's trade", async () => {
      const f = await threeMerchants();
      const { buyerId, orderNos } = await checkoutAll(f);
      const started = await asBuyer(h, buyerId).startPayment(orderNos[0]!, 'wechat', 'qr');
      await payAtCashier(h, 'wechat', started.body.payNo);
      await untilQuiet(h);
      const orchard = await getOrder(h.app, orderNos[0]!);
      const refund = await asBuyer(h, buyerId).refund(orchard.orderNo, [2], { key: newKey() });
      expect(refund.status, JSON.stringify(refund.body)).toBe(201);
      await untilQuiet(h);
      const subs = started.body.subPayments as { payNo: string; orderNo: string }[];
      for (const sub of subs) {
        const trade = h.sandbox!.core.trade('wechat', sub.payNo)!;
        expect(h.sandbox!.core.refunded_fen(trade), sub.orderNo).toBe(sub.orderNo === orchard.orderNo ? orchard.lines[1]!.payable_fen : 0);
      }
      expect(refund.body).toMatchObject({ payNo: subs.find((s) => s.orderNo === orchard.orderNo)!.payNo, amountFen: orchard.lines[1]!.payable_fen });
      expect((await getOrder(h.app, orchard.orderNo)).refunded_fen).toBe(orchard.lines[1]!.payable_fen);
      for (const other of orderNos.slice(1)) expect((await getOrder(h.app, other)).refunded_fen).toBe(0);
      // The refunded line's stock is back; the other lines' stays sold.
      expect(await stockLedger(h.app, f.merchants[0]!.activitySkuIds[1]!)).toMatchObject({ sold: 0, available: 20 });
      expect(await stockLedger(h.app, f.merchants[0]!.activitySkuIds[0]!)).toMatchObject({ sold: 1 });
    });

    it('a merchant without a sub-merchant id for a channel: that channel is refused with a named code, and nothing is written', async () => {
      const f = await seedMerchants(h.app, [
        { name: 'Everywhere', skus: [{ price_fen: 1000, stock: 5 }] },
        { name: 'WeChat only', channels: ['wechat'], skus: [{ price_fen: 500, stock: 5 }] },
        { name: 'Our own', selfOperated: true, skus: [{ price_fen: 300, stock: 5 }] },
      ]);
      const { buyerId, orderNos } = await checkoutAll(f);
      await untilQuiet(h);
      const before = await writtenRows(h.app);
      const tradesBefore = h.sandbox!.core.listTrades().length;
      for (const channel of ['alipay', 'unionpay', 'ccb'] as const) {
        const refused = await asBuyer(h, buyerId).startPayment(orderNos[0]!, channel, methodFor(channel));
        expect([refused.status, refused.body.code], channel).toEqual([422, 'merchant_not_payable']);
        expect(refused.body.details).toMatchObject({ channel, merchantIds: [f.merchants[1]!.merchantId], channels: ['wechat'] });
      }
      expect(await writtenRows(h.app)).toEqual(before);
      expect(h.sandbox!.core.listTrades()).toHaveLength(tradesBefore);
      // The cashier offers only the channel that can pay every order, and says why not the others.
      const checkoutNo = (await getOrder(h.app, orderNos[0]!)).checkoutNo;
      const cashier = await asBuyer(h, buyerId).get(`/checkouts/${checkoutNo}/cashier`);
      expect(cashier.status).toBe(200);
      const offered = new Map((cashier.body.channels as { channel: string; available: boolean; reason?: string; methods: string[] }[]).map((c) => [c.channel, c]));
      expect(offered.get('wechat')).toMatchObject({ available: true });
      for (const channel of ['alipay', 'unionpay', 'ccb']) expect(offered.get(channel), channel).toMatchObject({ available: false, reason: 'merchant_not_payable', merchantIds: [f.merchants[1]!.merchantId] });
      expect(offered.get('alipay')!.methods).toEqual(['page', 'h5', 'app']);
      expect((await asBuyer(h, buyerId + 1).get(`/checkouts/${checkoutNo}/cashier`)).status).toBe(404);
      // WeChat can pay every order: the platform's own goods go to the platform's own sub-merchant.
      const started = await asBuyer(h, buyerId).startPayment(orderNos[0]!, 'wechat', 'qr');
      expect(started.status, JSON.stringify(started.body)).toBe(201);
      expect(started.body.subPayments).toHaveLength(3);
    });

    it('who funds each discount: for random carts with platform and merchant promotions and coupons, every line splits its discount exactly and every order adds up', async () => {
      const f = await seedMerchants(h.app, [
        { name: 'Funded A', skus: [{ price_fen: 1290, stock: 10_000 }, { price_fen: 333, stock: 10_000 }] },
        { name: 'Funded B', skus: [{ price_fen: 2150, stock: 10_000 }] },
        { name: 'Funded C', skus: [{ price_fen: 777, stock: 10_000 }, { price_fen: 99, stock: 10_000 }] },
      ]);
      const now = h.clock.now();
      const window = { startsAt: new Date(now - DAY).toISOString(), endsAt: new Date(now + DAY).toISOString() };
      const admin = asAdmin(h);
      expect((await admin.createPromotion({ name: 'platform 满20减3', scope: { kind: 'platform' }, rule: { kind: 'amount_off', threshold_fen: 2000, off_fen: 300 }, ...window })).status).toBe(201);
      for (const m of f.merchants.slice(0, 2)) {
        expect((await admin.createPromotion({ name: `merchant ${m.merchantId} 满10减1`, scope: { kind: 'merchant', merchantId: m.merchantId }, rule: { kind: 'amount_off', threshold_fen: 1000, off_fen: 100 }, ...window })).status).toBe(201);
      }
      const platformCoupon = await createCouponTemplate(
        h.app.db,
        { name: 'platform 7 off', scope: { kind: 'platform' }, rule: { kind: 'fixed', off_fen: 700, threshold_fen: 1500 }, validFrom: window.startsAt, validUntil: window.endsAt, perBuyerLimit: 100 },
        now,
      );
      const skus = f.merchants.flatMap((m) => m.activitySkuIds);
      await fc.assert(
        fc.asyncProperty(fc.array(fc.integer({ min: 0, max: 6 }), { minLength: skus.length, maxLength: skus.length }), fc.boolean(), async (quantities, withCoupon) => {
          const items = skus.flatMap((activitySkuId, i) => (quantities[i]! > 0 ? [{ activitySkuId, quantity: quantities[i]! }] : []));
          if (items.length === 0) return;
          const buyerId = ++buyer;
          const couponIds = withCoupon ? [(await issueCoupons(h.app.db, platformCoupon.id, [buyerId], h.clock.now())).issued[0]!.couponId] : [];
          const placed = await asBuyer(h, buyerId).checkout({ leaderId: f.leaderId, items, couponIds });
          if (placed.status === 409 && placed.body.code === 'coupon_not_applicable') return;
          expect(placed.status, JSON.stringify(placed.body)).toBe(201);
          let payable = 0;
          let discount = 0;
          for (const view of placed.body.orders as { orderNo: string }[]) {
            const order = await getOrder(h.app, view.orderNo);
            for (const line of order.lines) {
              expect(line.platformFunded_fen + line.merchantFunded_fen).toBe(line.discount_fen);
              expect(line.platformFunded_fen).toBeGreaterThanOrEqual(0);
              expect(line.merchantFunded_fen).toBeGreaterThanOrEqual(0);
              expect(line.merchantId).toBe(order.merchantId);
              // A merchant's own discounts are its own: never on another merchant's line.
              const merchantFunded = line.discounts.filter((d) => d.funder === 'merchant').reduce((sum, d) => sum + d.amount_fen, 0);
              expect(merchantFunded).toBe(line.merchantFunded_fen);
            }
            expect(order.lines.reduce((sum, l) => sum + l.payable_fen, 0)).toBe(order.payable_fen);
            expect(order.itemsTotal_fen - order.discountTotal_fen + order.shipping_fen).toBe(order.payable_fen);
            payable += order.payable_fen;
            discount += order.discountTotal_fen;
          }
          expect(payable).toBe(placed.body.payableFen);
          expect(discount).toBe(placed.body.discountTotalFen);
          await asBuyer(h, buyerId).cancel((placed.body.orders as { orderNo: string }[])[0]!.orderNo);
        }),
        { numRuns: 12, seed: 20261207 },
      );
    });
  });
}
