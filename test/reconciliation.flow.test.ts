import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getOrder } from '../src/orders/index.ts';
import { findPayment, reconcile, refundsOfOrder, type ChannelName } from '../src/payments/index.ts';
import { CHINA_OFFSET_MS, chinaDate } from '../src/payments/channels/types.ts';
import { availableEngines } from './support/engines.ts';
import { newKey, seedActivity, startHarness, type Harness } from './support/harness.ts';
import { asAdmin, asBuyer, payAtCashier } from './support/client.ts';
import { untilQuiet } from './support/quiet.ts';

const DAY_MS = 24 * 3600_000;

/**
 * 对账 against the sandbox's bill in the channel's own format. The invariant: a day with one
 * injected difference of every kind is reported with exactly those differences — each with its
 * action — and nothing else; what the channel's query confirms is repaired on the spot.
 */
for (const engine of availableEngines()) {
  describe(`reconciliation (对账) on ${engine.name}`, () => {
    let h: Harness;
    let buyer = 80_000;
    beforeAll(async () => {
      h = await startHarness(engine, { sandbox: {}, paymentTimeout_ms: 2 * 3600_000 });
      // Work at 23:40 China time on a day of our own, so one payment can fall near midnight.
      const now = Date.now();
      const nextDayStart = Math.floor((now + CHINA_OFFSET_MS) / DAY_MS) * DAY_MS + DAY_MS - CHINA_OFFSET_MS;
      h.clock.advance(nextDayStart + 23 * 3600_000 + 40 * 60_000 - now);
    });
    afterAll(async () => h?.close());

    const channel: ChannelName = 'wechat';
    const core = () => h.sandbox!.core;
    const shard = (orderNo: string) => h.app.shards.forOrderNo(orderNo)!;


    async function paidOrder(options: { lostNotification?: boolean } = {}) {
      const f = await seedActivity(h.app, { skus: [{ price_fen: 1500, stock: 10 }] });
      const buyerId = ++buyer;
      const placed = await asBuyer(h, buyerId).checkout({ leaderId: f.leaderId, items: [{ activitySkuId: f.activitySkuIds[0]!, quantity: 1 }] });
      // One merchant: the checkout's one order, paid as a single trade.
      const order = placed.body.orders[0] as { orderNo: string; payableFen: number };
      const started = await asBuyer(h, buyerId).startPayment(order.orderNo, channel, 'qr');
      expect(started.body.combineNo).toBeNull();
      const payNo = started.body.payNo as string;
      if (options.lostNotification) {
        core().setFaults({ drop: 1 });
        // And our query has not come round to it yet.
        await shard(order.orderNo).deleteFrom('jobs').where('job_key', 'like', `payment.query:${payNo}:%`).execute();
      }
      await payAtCashier(h, channel, payNo);
      await untilQuiet(h);
      return { orderNo: order.orderNo, payNo, amount_fen: order.payableFen };
    }

    it('a day with every kind of difference: all reported, each with its action, and nothing else', async () => {
      const day = chinaDate(h.clock.now());
      const matched = await paidOrder();
      const lost = await paidOrder({ lostNotification: true });
      const missing = await paidOrder();
      const misstated = await paidOrder();
      const refunded = await paidOrder();
      // A refund whose result never reached us: the channel answered PROCESSING and its notification was lost.
      core().setFaults({ drop: 1 });
      const refund = await asAdmin(h).refund(refunded.orderNo, undefined, { key: newKey() });
      expect(refund.status).toBe(201);
      await shard(refunded.orderNo).deleteFrom('jobs').where('job_key', 'like', `payment.refund.follow:${refund.body.refundNo}:%`).execute();
      await untilQuiet(h);
      expect((await refundsOfOrder(shard(refunded.orderNo), refunded.orderNo))[0]!.status).not.toBe('SUCCEEDED');
      // A payment at 23:55 that the channel books on the next day.
      h.clock.advance(15 * 60_000);
      const lateNight = await paidOrder();
      const nextDay = chinaDate(h.clock.now() + DAY_MS);

      expect((await findPayment(shard(lost.orderNo), lost.payNo))!.status).toBe('CREATED');
      core().editBill({ kind: 'omit', channel, date: day, payNo: missing.payNo });
      core().editBill({ kind: 'amount', channel, date: day, payNo: misstated.payNo, amount_fen: misstated.amount_fen - 1 });
      core().editBill({ kind: 'omit', channel, date: day, payNo: lateNight.payNo });
      const lateRow = core().billRows(channel, day).length; // keeps the bill of the day as edited so far
      expect(lateRow).toBeGreaterThan(0);
      const at_ms = h.clock.now() - 60_000;
      const base = { tradeNo: '4200009999202611240000000001', total_fen: 990, subject: 'not ours', created_at_ms: at_ms, at_ms };
      core().editBill({ kind: 'add', channel, date: day, row: { ...base, kind: 'payment', payNo: 'EXT2026112400000001', amount_fen: 990 } });
      core().editBill({ kind: 'add', channel, date: day, row: { ...base, kind: 'refund', payNo: matched.payNo, tradeNo: core().trade(channel, matched.payNo)!.tradeNo, refundNo: 'RX000000000000000000001', channelRefundNo: '50300000000000000000001', amount_fen: 100, total_fen: matched.amount_fen } });
      const next = core().trade(channel, lateNight.payNo)!;
      core().editBill({
        kind: 'add',
        channel,
        date: nextDay,
        row: { kind: 'payment', payNo: lateNight.payNo, tradeNo: next.tradeNo, amount_fen: lateNight.amount_fen, total_fen: lateNight.amount_fen, subject: next.subject, created_at_ms: next.created_at_ms, at_ms: Date.parse(`${nextDay}T00:00:05+08:00`) },
      });

      const report = await reconcile(h.app.payments, { channel, date: day });
      const found = report.differences.map((d) => [d.kind, d.item, d.refundNo ?? d.payNo, d.action, d.actionStatus]).sort();
      expect(found).toEqual(
        [
          ['long', 'payment', lost.payNo, 'recorded_success_from_query', 'done'],
          ['long', 'payment', 'EXT2026112400000001', 'refund_or_claim', 'proposed'],
          ['short', 'payment', missing.payNo, 'hold_as_suspect', 'proposed'],
          ['amount_mismatch', 'payment', misstated.payNo, 'manual_review', 'proposed'],
          ['status_mismatch', 'refund', refund.body.refundNo, 'recorded_refund_from_query', 'done'],
          ['short', 'refund', 'RX000000000000000000001', 'manual_review', 'proposed'],
          ['cross_day', 'payment', lateNight.payNo, 'recheck_next_day', 'carried'],
        ].sort(),
      );
      expect(report.matched).toBe(report.billRows - 5);
      // The repairs took: the lost payment paid its order, the refund is complete.
      expect((await getOrder(h.app, lost.orderNo)).status).toBe('PAID');
      expect((await refundsOfOrder(shard(refunded.orderNo), refunded.orderNo))[0]!.status).toBe('SUCCEEDED');
      expect((await getOrder(h.app, matched.orderNo)).status).toBe('PAID');

      // The same bill read from a file: only what is still different is reported.
      const file = await h.app.payments.channels.get(channel)!.downloadBill(day);
      const again = await reconcile(h.app.payments, { channel, date: day, file, source: 'bill.csv.gz' });
      expect(again.differences.map((d) => d.kind).sort()).toEqual(['amount_mismatch', 'cross_day', 'long', 'short', 'short']);

      // The next day's run finds the late-night payment, booked by us the day before.
      const following = await reconcile(h.app.payments, { channel, date: nextDay });
      expect(following.differences.map((d) => [d.kind, d.payNo, d.action])).toEqual([['cross_day', lateNight.payNo, 'matched_previous_day']]);

      const listed = await asAdmin(h).reconciliations();
      expect(listed.body.runs.map((r: any) => [r.billDate, r.differences])).toEqual([
        [nextDay, 1],
        [day, 5],
        [day, 7],
      ]);
      const stored = await asAdmin(h).reconciliation(report.runId);
      expect(stored.body.differences).toHaveLength(7);
      const forbidden = await asBuyer(h, 1).get('/admin/reconciliations');
      expect(forbidden.status).toBe(403);
    });
  });
}
