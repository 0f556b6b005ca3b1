import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { updateActivitySku } from '../src/catalog/index.ts';
import { getOrder } from '../src/orders/index.ts';
import { CHANNELS, findPayment, paymentsOfOrder, refundsOfOrder, type ChannelName } from '../src/payments/index.ts';
import type { SandboxEvent } from '../src/tools/sandbox/trades.ts';
import { availableEngines } from './support/engines.ts';
import { channelAccountsOf, newKey, seedActivity, startHarness, stockLedger, type Harness } from './support/harness.ts';
import { asAdmin, asBuyer, payAtCashier } from './support/client.ts';
import { untilQuiet } from './support/quiet.ts';

/**
 * The payment centre against the channel sandbox, on every engine. Invariants: a success is
 * applied once; an order is paid by at most one payment and every other success is refunded in
 * full, automatically, once; nothing a forged notification says changes anything; refunds
 * never pass what was paid, and their stock goes back to the activity.
 */
for (const engine of availableEngines()) {
  describe(`payment centre (支付中台) with the channel sandbox on ${engine.name}`, () => {
    let h: Harness;
    let buyer = 70_000;
    beforeAll(async () => {
      h = await startHarness(engine, { sandbox: {} });
    });
    afterAll(async () => h?.close());

    const sandbox = () => h.sandbox!;

    async function placeOrder(skus: { price_fen: number; stock: number }[] = [{ price_fen: 1200, stock: 10 }, { price_fen: 800, stock: 10 }]) {
      const f = await seedActivity(h.app, { skus });
      const buyerId = ++buyer;
      const placed = await asBuyer(h, buyerId).checkout({ leaderId: f.leaderId, items: f.activitySkuIds.map((id) => ({ activitySkuId: id, quantity: 1 })) });
      expect(placed.status).toBe(201);
      // One merchant's goods: the checkout holds one order, and it carries what the checkout did before 拆单.
      expect(placed.body.orders).toHaveLength(1);
      return { f, buyerId, checkoutNo: placed.body.checkoutNo as string, orderNo: placed.body.orders[0].orderNo as string, merchantId: placed.body.orders[0].merchantId as number, payable_fen: placed.body.orders[0].payableFen as number };
    }

    /** A refund by the buyer or, without one, by an admin. */
    const refund = (orderNo: string, who: { buyerId?: number }, lineNos?: number[], key = newKey()) =>
      who.buyerId ? asBuyer(h, who.buyerId).refund(orderNo, lineNos, { key }) : asAdmin(h).refund(orderNo, lineNos, { key });

    const shard = (orderNo: string) => h.app.shards.forOrderNo(orderNo)!;
    /** How many times the order changed state: one transition to PAID is version 1. */
    const transitions = async (orderNo: string) => (await getOrder(h.app, orderNo)).version;

    /** A paid event for an open trade, without paying it at the sandbox (for replayed and forged notifications). */
    function paidEvent(channel: ChannelName, payNo: string): SandboxEvent {
      const trade = sandbox().core.trade(channel, payNo)!;
      return { kind: 'paid', trade: { ...trade, state: 'SUCCESS', paid_at_ms: h.clock.now(), refunds: [] } };
    }

    async function deliver(channel: ChannelName, notification: { headers: Record<string, string>; body: string }) {
      const response = await fetch(`${h.app.payments.publicUrl}/payments/notify/${channel}`, { method: 'POST', headers: notification.headers, body: notification.body });
      return { status: response.status, body: await response.text() };
    }

    for (const channel of CHANNELS) {
      it(`${channel}: pay through the cashier, the notification pays the order; refund a line, then the rest`, async () => {
        const { f, buyerId, checkoutNo, orderNo, merchantId, payable_fen } = await placeOrder();
        const started = await asBuyer(h, buyerId).startPayment(orderNo, channel);
        expect(started.status).toBe(201);
        // A checkout of one merchant pays as a single trade: no combine number, the attempt names its order,
        // and its one sub-payment is that trade, paid to the merchant's own sub-merchant id at the channel.
        expect(started.body).toMatchObject({ status: 'CREATED', channel, amountFen: payable_fen, checkoutNo, orderNo, combineNo: null });
        expect(started.body.subPayments).toMatchObject([{ payNo: started.body.payNo, orderNo, combineNo: null, amountFen: payable_fen, subMerchantId: channelAccountsOf(merchantId)[channel] }]);
        expect(started.body.action).toBeTruthy();
        // A second tap with the same channel and method shows the same attempt.
        expect((await asBuyer(h, buyerId).startPayment(orderNo, channel)).body.payNo).toBe(started.body.payNo);

        expect(await payAtCashier(h, channel, started.body.payNo)).toBe(200);
        await untilQuiet(h);
        expect(await getOrder(h.app, orderNo)).toMatchObject({ status: 'PAID', paymentNo: started.body.payNo, paid_fen: payable_fen });
        expect(await findPayment(shard(orderNo), started.body.payNo)).toMatchObject({ status: 'SUCCEEDED', disposition: 'applied' });
        expect(await stockLedger(h.app, f.activitySkuIds[0]!)).toMatchObject({ available: 9, sold: 1 });

        const order = await getOrder(h.app, orderNo);
        const key = newKey();
        const first = await refund(orderNo, { buyerId }, [1], key);
        expect(first.status).toBe(201);
        expect(first.body).toMatchObject({ amountFen: order.lines[0]!.payable_fen, lineNos: [1], reason: 'buyer_request' });
        expect((await refund(orderNo, { buyerId }, [1], key)).body.refundNo).toBe(first.body.refundNo);
        await untilQuiet(h);
        expect((await refundsOfOrder(shard(orderNo), orderNo)).map((r) => r.status)).toEqual(['SUCCEEDED']);
        expect(await findPayment(shard(orderNo), started.body.payNo)).toMatchObject({ status: 'PARTLY_REFUNDED', refunded_fen: order.lines[0]!.payable_fen });
        expect(await getOrder(h.app, orderNo)).toMatchObject({ status: 'PAID', refunded_fen: order.lines[0]!.payable_fen });
        expect(await stockLedger(h.app, f.activitySkuIds[0]!)).toMatchObject({ available: 10, sold: 0 });
        // The same line again is refused; the rest by an admin closes the order.
        expect((await refund(orderNo, { buyerId }, [1])).body.code).toBe('refund_not_allowed');
        expect((await refund(orderNo, {})).status).toBe(201);
        await untilQuiet(h);
        expect(await getOrder(h.app, orderNo)).toMatchObject({ status: 'REFUNDED', refunded_fen: payable_fen });
        expect(await findPayment(shard(orderNo), started.body.payNo)).toMatchObject({ status: 'REFUNDED', refunded_fen: payable_fen });
        expect(await stockLedger(h.app, f.activitySkuIds[1]!)).toMatchObject({ available: 10, sold: 0 });
        expect(sandbox().core.refunded_fen(sandbox().core.trade(channel, started.body.payNo)!)).toBe(payable_fen);
      });
    }

    it('a lost notification (drop) is found by the active query (补单), on every channel', async () => {
      for (const channel of CHANNELS) {
        const { buyerId, orderNo } = await placeOrder();
        const started = await asBuyer(h, buyerId).startPayment(orderNo, channel);
        sandbox().core.setFaults({ drop: 1 });
        await payAtCashier(h, channel, started.body.payNo);
        await untilQuiet(h);
        expect((await getOrder(h.app, orderNo)).status).toBe('PENDING_PAYMENT');
        h.clock.advance(16_000);
        await untilQuiet(h);
        expect((await getOrder(h.app, orderNo)).status, channel).toBe('PAID');
        expect((await findPayment(shard(orderNo), started.body.payNo))!.channelTradeNo, channel).toBeTruthy();
      }
    });

    it('a delayed notification pays the order when it comes', async () => {
      const { buyerId, orderNo } = await placeOrder();
      const started = await asBuyer(h, buyerId).startPayment(orderNo, 'wechat');
      sandbox().core.setFaults({ delay_ms: 150 });
      await payAtCashier(h, 'wechat', started.body.payNo);
      expect((await getOrder(h.app, orderNo)).status).toBe('PENDING_PAYMENT');
      await untilQuiet(h);
      sandbox().core.setFaults({ delay_ms: 0 });
      expect((await getOrder(h.app, orderNo)).status).toBe('PAID');
    });

    it('a duplicated notification is one success, not a duplicate payment', async () => {
      const { buyerId, orderNo } = await placeOrder();
      const started = await asBuyer(h, buyerId).startPayment(orderNo, 'unionpay');
      sandbox().core.setFaults({ duplicate: 1 });
      await payAtCashier(h, 'unionpay', started.body.payNo);
      await untilQuiet(h);
      expect((await getOrder(h.app, orderNo)).status).toBe('PAID');
      expect(await transitions(orderNo)).toBe(1);
      expect(await refundsOfOrder(shard(orderNo), orderNo)).toEqual([]);
    });

    it('a mis-signed notification is rejected and its properly signed retry accepted', async () => {
      const { buyerId, orderNo } = await placeOrder();
      const started = await asBuyer(h, buyerId).startPayment(orderNo, 'wechat');
      const before = sandbox().core.deliveries.length;
      sandbox().core.setFaults({ misSign: 1 });
      await payAtCashier(h, 'wechat', started.body.payNo);
      await untilQuiet(h);
      const attempts = sandbox().core.deliveries.slice(before);
      expect(attempts.map((a) => [a.misSigned, a.acknowledged])).toEqual([
        [true, false],
        [false, true],
      ]);
      expect((await getOrder(h.app, orderNo)).status).toBe('PAID');
    });

    it('reordered notifications (a refund before the payment it refunds) come out right', async () => {
      const { buyerId, orderNo } = await placeOrder();
      const started = await asBuyer(h, buyerId).startPayment(orderNo, 'wechat');
      sandbox().core.setFaults({ reorder: true });
      await payAtCashier(h, 'wechat', started.body.payNo);
      // The payment's notification is held: the active query finds the success.
      h.clock.advance(16_000);
      await untilQuiet(h);
      expect((await getOrder(h.app, orderNo)).status).toBe('PAID');
      const refunded = await refund(orderNo, { buyerId }, [2]);
      expect(refunded.status).toBe(201);
      // Release: the refund's notification arrives first, the stale payment one after it.
      sandbox().core.setFaults({ reorder: false });
      await untilQuiet(h);
      const payment = await findPayment(shard(orderNo), started.body.payNo);
      expect(payment).toMatchObject({ status: 'PARTLY_REFUNDED', disposition: 'applied' });
      expect((await refundsOfOrder(shard(orderNo), orderNo)).map((r) => r.status)).toEqual(['SUCCEEDED']);
      expect(await transitions(orderNo)).toBe(1);
    });

    it('a refund the channel fails gives its amount back to what can be refunded', async () => {
      const { buyerId, orderNo, payable_fen } = await placeOrder();
      const { started } = await asBuyer(h, buyerId).pay(orderNo, 'alipay');
      await untilQuiet(h);
      sandbox().core.setFaults({ failRefund: 1 });
      const failed = await refund(orderNo, {});
      await untilQuiet(h);
      expect((await refundsOfOrder(shard(orderNo), orderNo))[0]).toMatchObject({ refundNo: failed.body.refundNo, status: 'FAILED' });
      expect(await findPayment(shard(orderNo), started.body.payNo)).toMatchObject({ status: 'SUCCEEDED', refundCommitted_fen: 0 });
      expect((await refund(orderNo, {})).status).toBe(201);
      await untilQuiet(h);
      expect(await getOrder(h.app, orderNo)).toMatchObject({ status: 'REFUNDED', refunded_fen: payable_fen });
    });

    it('100 forged or mis-signed notifications are all rejected and change nothing', async () => {
      const open: { channel: ChannelName; payNo: string; orderNo: string }[] = [];
      for (const channel of CHANNELS) {
        const { buyerId, orderNo } = await placeOrder();
        open.push({ channel, orderNo, payNo: (await asBuyer(h, buyerId).startPayment(orderNo, channel)).body.payNo });
      }
      const before = await Promise.all(open.map(async (o) => [await getOrder(h.app, o.orderNo), await findPayment(shard(o.orderNo), o.payNo)]));
      const answers: number[] = [];
      for (let i = 0; i < 100; i++) {
        const { channel, payNo } = open[i % open.length]!;
        const accepted = h.app.payments.channels.get(channel)!.answer('accepted');
        let forged = sandbox().core.notificationFor(paidEvent(channel, payNo), { misSign: true })!;
        if (i % 2 === 1) {
          // A properly signed notification with one character of its body changed.
          const good = sandbox().core.notificationFor(paidEvent(channel, payNo))!;
          const at = Math.floor(good.body.length / 3) + (i % 17);
          const swapped = good.body[at] === '1' ? '2' : '1';
          forged = { ...good, body: good.body.slice(0, at) + swapped + good.body.slice(at + 1) };
        }
        const answer = await deliver(channel, forged);
        expect(answer.status === accepted.status && answer.body === accepted.body, `forgery ${i} on ${channel} was accepted`).toBe(false);
        answers.push(answer.status);
      }
      expect(answers).toHaveLength(100);
      await untilQuiet(h);
      const after = await Promise.all(open.map(async (o) => [await getOrder(h.app, o.orderNo), await findPayment(shard(o.orderNo), o.payNo)]));
      expect(after).toEqual(before);
      for (const [order, payment] of after) expect([(order as any).status, (payment as any).status]).toEqual(['PENDING_PAYMENT', 'CREATED']);
      for (const { orderNo } of open) expect(await refundsOfOrder(shard(orderNo), orderNo)).toEqual([]);
    });

    it('one notification delivered 10 times at once is one success', async () => {
      for (const channel of ['alipay', 'wechat'] as const) {
        const { buyerId, orderNo } = await placeOrder();
        const started = await asBuyer(h, buyerId).startPayment(orderNo, channel);
        sandbox().core.setFaults({ drop: 1 });
        await payAtCashier(h, channel, started.body.payNo);
        const trade = sandbox().core.trade(channel, started.body.payNo)!;
        const notification = sandbox().core.notificationFor({ kind: 'paid', trade })!;
        const accepted = h.app.payments.channels.get(channel)!.answer('accepted');
        const answers = await Promise.all(Array.from({ length: 10 }, () => deliver(channel, notification)));
        expect(answers.every((a) => a.status === accepted.status && a.body === accepted.body)).toBe(true);
        await untilQuiet(h);
        expect((await getOrder(h.app, orderNo)).status).toBe('PAID');
        expect(await transitions(orderNo)).toBe(1);
        expect(await refundsOfOrder(shard(orderNo), orderNo)).toEqual([]);
      }
    });

    it('an order paid on both WeChat and Alipay: exactly one automatic refund (重复支付)', async () => {
      const { buyerId, orderNo, payable_fen } = await placeOrder();
      const onAlipay = await asBuyer(h, buyerId).startPayment(orderNo, 'alipay');
      // Switching channels closes the Alipay trade first — but the buyer is already at its cashier.
      sandbox().core.setFaults({ keepPayableOnClose: 1 });
      const onWechat = await asBuyer(h, buyerId).startPayment(orderNo, 'wechat');
      expect(onWechat.status).toBe(201);
      expect((await findPayment(shard(orderNo), onAlipay.body.payNo))!.status).toBe('CLOSED');
      await payAtCashier(h, 'wechat', onWechat.body.payNo);
      await payAtCashier(h, 'alipay', onAlipay.body.payNo);
      await untilQuiet(h);
      expect(await getOrder(h.app, orderNo)).toMatchObject({ status: 'PAID' });
      const payments = await paymentsOfOrder(shard(orderNo), orderNo);
      const paid = payments.filter((p) => p.disposition === 'applied');
      const duplicate = payments.filter((p) => p.disposition === 'duplicate_payment');
      expect(paid).toHaveLength(1);
      expect(duplicate).toHaveLength(1);
      const refunds = await refundsOfOrder(shard(orderNo), orderNo);
      expect(refunds).toHaveLength(1);
      expect(refunds[0]).toMatchObject({ payNo: duplicate[0]!.payNo, reason: 'duplicate_payment', amount_fen: payable_fen, status: 'SUCCEEDED' });
      expect(sandbox().core.refunded_fen(sandbox().core.trade(duplicate[0]!.channel, duplicate[0]!.payNo)!)).toBe(payable_fen);
      expect(sandbox().core.refunded_fen(sandbox().core.trade(paid[0]!.channel, paid[0]!.payNo)!)).toBe(0);
      // The duplicate's notification again changes nothing.
      sandbox().core.renotify({ kind: 'paid', trade: sandbox().core.trade(duplicate[0]!.channel, duplicate[0]!.payNo)! });
      await untilQuiet(h);
      expect(await refundsOfOrder(shard(orderNo), orderNo)).toHaveLength(1);
    });

    it('an automatic refund the channel failed is tried again by an admin, once', async () => {
      const { buyerId, orderNo, payable_fen } = await placeOrder();
      const onAlipay = await asBuyer(h, buyerId).startPayment(orderNo, 'alipay');
      sandbox().core.setFaults({ keepPayableOnClose: 1 });
      const onWechat = await asBuyer(h, buyerId).startPayment(orderNo, 'wechat');
      await payAtCashier(h, 'wechat', onWechat.body.payNo);
      await untilQuiet(h);
      sandbox().core.setFaults({ failRefund: 1 });
      await payAtCashier(h, 'alipay', onAlipay.body.payNo);
      await untilQuiet(h);
      const duplicate = onAlipay.body.payNo as string;
      expect(await findPayment(shard(orderNo), duplicate)).toMatchObject({ disposition: 'duplicate_payment', status: 'SUCCEEDED', refundCommitted_fen: 0 });
      expect((await refundsOfOrder(shard(orderNo), orderNo)).map((r) => r.status)).toEqual(['FAILED']);
      const key = newKey();
      const retry = () => asAdmin(h).refundPayment(duplicate, { key });
      const [first, second] = await Promise.all([retry(), retry()]);
      expect(first.body.refundNo).toBe(second.body.refundNo);
      await untilQuiet(h);
      expect(await findPayment(shard(orderNo), duplicate)).toMatchObject({ status: 'REFUNDED', refunded_fen: payable_fen });
      expect(sandbox().core.refunded_fen(sandbox().core.trade('alipay', duplicate)!)).toBe(payable_fen);
      // The payment that paid the order is refunded through its lines, not this way.
      const applied = await asAdmin(h).refundPayment(onWechat.body.payNo, { key: newKey() });
      expect(applied.body.code).toBe('refund_not_allowed');
    });

    it('a payment that succeeds after the order timed out is refunded', async () => {
      const { buyerId, orderNo, payable_fen } = await placeOrder();
      const started = await asBuyer(h, buyerId).startPayment(orderNo, 'alipay');
      const payNo = started.body.payNo as string;
      // Paid at the channel at the last moment; its notification is late and our query has not come round yet.
      sandbox().core.setFaults({ drop: 1 });
      await payAtCashier(h, 'alipay', payNo);
      await shard(orderNo).deleteFrom('jobs').where('job_key', 'like', `payment.query:${payNo}:%`).execute();
      h.clock.advance(16 * 60_000);
      await untilQuiet(h);
      expect(await getOrder(h.app, orderNo)).toMatchObject({ status: 'CANCELLED', cancelReason: 'payment_timeout' });
      // The channel's retry arrives.
      sandbox().core.renotify({ kind: 'paid', trade: sandbox().core.trade('alipay', payNo)! });
      await untilQuiet(h);
      expect(await findPayment(shard(orderNo), payNo)).toMatchObject({ status: 'REFUNDED', disposition: 'order_cancelled', refunded_fen: payable_fen });
      expect((await refundsOfOrder(shard(orderNo), orderNo)).map((r) => [r.reason, r.status])).toEqual([['order_cancelled', 'SUCCEEDED']]);
      expect((await getOrder(h.app, orderNo)).status).toBe('CANCELLED');
    });

    it('a 价保 claim is paid out as a refund; refunding the line later returns only what is left of it', async () => {
      const { f, buyerId, orderNo, payable_fen } = await placeOrder([{ price_fen: 1000, stock: 10 }]);
      const { started } = await asBuyer(h, buyerId).pay(orderNo, 'wechat');
      await untilQuiet(h);
      await updateActivitySku(h.app.db, f.activitySkuIds[0]!, { price_fen: 700 }, h.clock.now());
      const claimed = await asBuyer(h, buyerId).claimPriceProtection(orderNo, '1');
      expect(claimed.body).toMatchObject({ amountFen: 300 });
      await untilQuiet(h);
      expect((await refundsOfOrder(shard(orderNo), orderNo)).map((r) => [r.reason, r.amount_fen, r.status])).toEqual([['price_protection', 300, 'SUCCEEDED']]);
      expect(await getOrder(h.app, orderNo)).toMatchObject({ status: 'PAID', refunded_fen: 300 });
      expect((await refund(orderNo, {})).body).toMatchObject({ amountFen: payable_fen - 300 });
      await untilQuiet(h);
      expect(await getOrder(h.app, orderNo)).toMatchObject({ status: 'REFUNDED', refunded_fen: payable_fen });
      expect(await findPayment(shard(orderNo), started.body.payNo)).toMatchObject({ status: 'REFUNDED', refunded_fen: payable_fen });
    });

    it('an Idempotency-Key reused with another refund request is 409 idempotency_key_reused and writes nothing', async () => {
      const { buyerId, orderNo } = await placeOrder();
      const { started } = await asBuyer(h, buyerId).pay(orderNo, 'alipay');
      await untilQuiet(h);
      const key = newKey();
      const first = await refund(orderNo, { buyerId }, [1], key);
      expect(first.status).toBe(201);
      // The same request again (lines in another order, repeated) is the same refund.
      expect((await refund(orderNo, { buyerId }, [1, 1], key)).body.refundNo).toBe(first.body.refundNo);
      const before = await refundsOfOrder(shard(orderNo), orderNo);
      for (const other of [
        () => refund(orderNo, { buyerId }, [2], key),
        () => refund(orderNo, { buyerId }, undefined, key),
        () => refund(orderNo, {}, [1], key),
      ]) {
        const reused = await other();
        expect([reused.status, reused.body.code, reused.body.field]).toEqual([409, 'idempotency_key_reused', 'Idempotency-Key']);
      }
      expect(await refundsOfOrder(shard(orderNo), orderNo)).toEqual(before);
    });

    it('refuses what the policy does not allow', async () => {
      const { buyerId, orderNo } = await placeOrder();
      expect((await asBuyer(h, buyerId).startPayment(orderNo, 'ccb', 'jsapi')).body.code).toBe('pay_method_not_supported');
      expect((await asBuyer(h, buyerId + 1).startPayment(orderNo, 'alipay')).body.code).toBe('order_not_found');
      expect((await refund(orderNo, { buyerId })).body.code).toBe('refund_not_allowed');
      const notify = await fetch(`${h.app.payments.publicUrl}/payments/notify/paypal`, { method: 'POST', body: 'x' });
      expect(notify.status).toBe(400);
    });
  });
}
