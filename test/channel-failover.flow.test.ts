import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getOrder } from '../src/orders/index.ts';
import { findPayment } from '../src/payments/index.ts';
import { availableEngines } from './support/engines.ts';
import { seedActivity, startHarness, type CatalogFixture, type Harness } from './support/harness.ts';
import { asBuyer, payAtCashier } from './support/client.ts';
import { untilQuiet } from './support/quiet.ts';

const FAILURES = 3;
const OPEN_MS = 20_000;
const BUYERS = 24;

/**
 * 熔断, on every engine: WeChat Pay goes down under a load of payment starts. After FAILURES
 * failed create calls it leaves the cashier (the start says why and offers Alipay; the buyers pay
 * with Alipay), a payment already open on it keeps being queried and is found paid once the
 * channel is back, a probe while it is still down keeps it out, and the first start after it
 * recovers brings it back.
 */
for (const engine of availableEngines()) {
  describe(`channel failover on ${engine.name}`, () => {
    let h: Harness;
    let f: CatalogFixture;
    beforeAll(async () => {
      h = await startHarness(engine, { sandbox: {}, config: { channelBreaker: { failures: FAILURES, window_ms: 60_000, open_ms: OPEN_MS } } });
      f = await seedActivity(h.app, { skus: [{ price_fen: 800, stock: 1_000 }] });
    });
    afterAll(async () => h?.close());

    const sandbox = () => h.sandbox!;
    const place = async (buyerId: number) => {
      const placed = await asBuyer(h, buyerId).checkout({ leaderId: f.leaderId, items: [{ activitySkuId: f.activitySkuIds[0]!, quantity: 1 }] });
      expect(placed.status).toBe(201);
      // One merchant: the checkout's one order (its number is in the channel trade's subject).
      return placed.body.orders[0].orderNo as string;
    };
    const start = async (buyerId: number, orderNo: string, channel: 'wechat' | 'alipay') => {
      const r = await asBuyer(h, buyerId).startPayment(orderNo, channel, 'qr');
      return { status: r.status, body: r.body as any };
    };
    const cashier = async () => ((await h.http.inject({ method: 'GET', url: '/payments/channels' })).json() as any).channels as Array<{ channel: string; available: boolean; state: string; reason?: string }>;

    it('takes a failing channel out under load, keeps querying what is open on it, and brings it back when it recovers', async () => {
      // A WeChat payment opened while the channel works; the buyer pays it during the outage and
      // its notification is lost, so only the query job can find it.
      const openBuyer = 1;
      const openOrder = await place(openBuyer);
      const open = await start(openBuyer, openOrder, 'wechat');
      expect(open.status).toBe(201);
      expect((await cashier()).every((c) => c.available && c.state === 'closed')).toBe(true);

      sandbox().core.setFaults({ down: ['wechat'], drop: 1 });
      expect((await payAtCashier(h, 'wechat', open.body.payNo))).toBe(200);

      // The first starts while it is down reach the channel and fail; their attempts stay open
      // (the channel may have made the trade), followed by the query job.
      const first = [100, 101, 102];
      const firstOrders = await Promise.all(first.map(place));
      for (const [i, buyerId] of first.entries()) {
        const failed = await start(buyerId, firstOrders[i]!, 'wechat');
        expect(failed).toMatchObject({ status: 503, body: { code: 'channel_unavailable' } });
      }
      const out = (await cashier()).find((c) => c.channel === 'wechat')!;
      expect(out).toMatchObject({ available: false, state: 'open' });
      expect(out.reason).toBeTruthy();

      // The load: buyers start WeChat payments at once; the channel is out, so none is sent to it,
      // and each is told why and what to pay with instead.
      const buyers = Array.from({ length: BUYERS }, (_, i) => 300 + i);
      const orders = await Promise.all(buyers.map(place));
      const refused = await Promise.all(buyers.map((b, i) => start(b, orders[i]!, 'wechat')));
      for (const r of refused) {
        expect(r).toMatchObject({ status: 503, body: { code: 'channel_down', field: 'channel', details: { channel: 'wechat', available: ['alipay', 'unionpay', 'ccb'] } } });
        expect(r.body.message).toContain('alipay');
        expect(r.body.details.reason).toBeTruthy();
      }
      expect(sandbox().core.listTrades('wechat').filter((t) => orders.some((o) => t.subject.includes(o)))).toEqual([]);

      // The buyers pay with the channel the cashier still offers.
      const alipay = await Promise.all(buyers.map((b, i) => start(b, orders[i]!, 'alipay')));
      expect(alipay.map((a) => a.status)).toEqual(buyers.map(() => 201));
      for (const a of alipay) expect((await payAtCashier(h, 'alipay', a.body.payNo))).toBe(200);
      await untilQuiet(h);
      for (const orderNo of orders) expect((await getOrder(h.app, orderNo)).status).toBe('PAID');

      // The open WeChat payment is still queried while the channel is out: the query fails (it is down) and is tried again.
      h.clock.advance(16_000);
      await untilQuiet(h);
      expect((await getOrder(h.app, openOrder)).status).toBe('PENDING_PAYMENT');

      // Time for a probe, but WeChat is still down: the probe fails and the channel stays out.
      h.clock.advance(OPEN_MS);
      expect((await cashier()).find((c) => c.channel === 'wechat')).toMatchObject({ available: true, state: 'half_open' });
      const probeBuyer = 200;
      const probeOrder = await place(probeBuyer);
      expect((await start(probeBuyer, probeOrder, 'wechat')).body.code).toBe('channel_unavailable');
      expect((await cashier()).find((c) => c.channel === 'wechat')).toMatchObject({ available: false, state: 'open' });
      expect((await start(probeBuyer, probeOrder, 'wechat')).body.code).toBe('channel_down');

      // WeChat recovers. The open payment's next query finds it paid, and the next probe brings the channel back.
      sandbox().core.setFaults({ down: [] });
      h.clock.advance(OPEN_MS + 60_000);
      await untilQuiet(h);
      expect((await getOrder(h.app, openOrder)).status).toBe('PAID');
      expect(await findPayment(h.app.shards.forOrderNo(openOrder)!, open.body.payNo)).toMatchObject({ status: 'SUCCEEDED', disposition: 'applied' });
      const probe = await start(probeBuyer, probeOrder, 'wechat');
      expect(probe.status).toBe(201);
      expect((await cashier()).find((c) => c.channel === 'wechat')).toEqual({ channel: 'wechat', methods: expect.any(Array), available: true, state: 'closed' });
      expect((await payAtCashier(h, 'wechat', probe.body.payNo))).toBe(200);
      await untilQuiet(h);
      expect((await getOrder(h.app, probeOrder)).status).toBe('PAID');
      // The attempts that failed while it was down were decided by their queries: those buyers pay now.
      for (const [i, buyerId] of first.entries()) {
        const again = await start(buyerId, firstOrders[i]!, 'alipay');
        expect(again.status, JSON.stringify(again.body)).toBe(201);
      }
    });
  });
}
