import type { KyselyPlugin } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { updateActivitySku } from '../src/catalog/index.ts';
import { getOrder } from '../src/orders/index.ts';
import { applyTradeResult, findPayment, refundsOfOrder, requestRefund, type ChannelName, type PaymentCentre } from '../src/payments/index.ts';
import type { TestDb as Db } from './support/db.ts';
import { availableEngines } from './support/engines.ts';
import { newKey, seedActivity, startHarness, type Harness } from './support/harness.ts';
import { asBuyer, payAtCashier } from './support/client.ts';
import { untilQuiet } from './support/quiet.ts';

/** A gate a test opens by hand, and a promise that says when someone started waiting at it. */
function gate() {
  let open!: () => void;
  let reached!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  const waiting = new Promise<void>((resolve) => (reached = resolve));
  return { open, waiting, pass: async () => (reached(), opened) };
}

/**
 * The payment centre with its main database handle holding its first query at a gate, before
 * the query takes a connection: the buyer refund policy check (an activity read) is the only use
 * of it in requestRefund, and it comes after the order is read and before the refund is written —
 * the window two requests race in.
 */
function pausedAtPolicyCheck(centre: PaymentCentre, at: ReturnType<typeof gate>): PaymentCentre {
  let armed = true;
  const EXECUTES = new Set(['execute', 'executeTakeFirst', 'executeTakeFirstOrThrow']);
  const wrap = <T extends object>(target: T): T =>
    new Proxy(target, {
      get(t, key) {
        const value = Reflect.get(t, key) as unknown;
        if (typeof value !== 'function') return value;
        if (EXECUTES.has(key as string)) {
          return async (...args: unknown[]) => {
            if (armed) {
              armed = false;
              await at.pass();
            }
            return value.apply(t, args);
          };
        }
        return (...args: unknown[]) => {
          const result = value.apply(t, args);
          return result && typeof result === 'object' && 'compile' in result ? wrap(result) : result;
        };
      },
    });
  return { ...centre, platform: { ...centre.platform, db: wrap(centre.platform.db) } };
}

/**
 * Review regressions of the payment centre, on every engine. Invariants: a line is refunded at most
 * once and never past what was paid for it; the same refund request is one refund; a cancelled
 * order leaves no payable trade at the channel.
 */
for (const engine of availableEngines()) {
  describe(`payment centre review regressions on ${engine.name}`, () => {
    let h: Harness;
    let buyer = 90_000;
    beforeAll(async () => {
      h = await startHarness(engine, { sandbox: {} });
    });
    afterAll(async () => h?.close());

    const sandbox = () => h.sandbox!;
    const shard = (orderNo: string) => h.app.shards.forOrderNo(orderNo)!;


    async function paidOrder(channel: ChannelName = 'alipay', skus = [{ price_fen: 1200, stock: 10 }, { price_fen: 800, stock: 10 }]) {
      const f = await seedActivity(h.app, { skus });
      const buyerId = ++buyer;
      const placed = await asBuyer(h, buyerId).checkout({ leaderId: f.leaderId, items: f.activitySkuIds.map((id) => ({ activitySkuId: id, quantity: 1 })) });
      expect(placed.status).toBe(201);
      const orderNo = placed.body.orders[0].orderNo as string;
      const { started, cashier } = await asBuyer(h, buyerId).pay(orderNo, channel);
      const payNo = started.body.payNo as string;
      expect(cashier).toBe(200);
      await untilQuiet(h);
      expect((await getOrder(h.app, orderNo)).status).toBe('PAID');
      return { f, buyerId, orderNo, payNo, payable_fen: placed.body.orders[0].payableFen as number };
    }


    const lineRequest = (orderNo: string, buyerId: number, lineNos: number[], requestKey: string) => ({
      orderNo,
      lineNos,
      requestKey,
      reason: 'buyer_request' as const,
      requestedBy: `buyer:${buyerId}`,
      asBuyer: buyerId,
    });

    it('two refund requests for one line with different keys: the one that read the order before the other succeeded is refused', async () => {
      // Line 1 is the smaller, so two refunds of it stay under the payment: only the line check can stop the second.
      const { orderNo, payNo, buyerId } = await paidOrder('alipay', [{ price_fen: 500, stock: 10 }, { price_fen: 1500, stock: 10 }]);
      const line1 = (await getOrder(h.app, orderNo)).lines[0]!;
      const at = gate();
      const late = requestRefund(pausedAtPolicyCheck(h.app.payments, at), lineRequest(orderNo, buyerId, [1], newKey())).then(
        (r) => ({ ok: true as const, r }),
        (e: unknown) => ({ ok: false as const, e }),
      );
      await at.waiting;
      const first = await requestRefund(h.app.payments, lineRequest(orderNo, buyerId, [1], newKey()));
      expect(first.status).toBe('SUCCEEDED');
      at.open();
      const second = await late;
      expect(second.ok).toBe(false);
      expect((second as { e: { code?: string } }).e.code).toBe('refund_not_allowed');
      await untilQuiet(h);
      expect(sandbox().core.refunded_fen(sandbox().core.trade('alipay', payNo)!)).toBe(line1.payable_fen);
      expect((await refundsOfOrder(shard(orderNo), orderNo)).map((r) => [r.lineNos, r.status])).toEqual([[[1], 'SUCCEEDED']]);
      expect(await getOrder(h.app, orderNo)).toMatchObject({ status: 'PAID', refunded_fen: line1.payable_fen });
    });

    it('the same refund request twice at once returns the one refund', async () => {
      const { orderNo, buyerId, payNo } = await paidOrder();
      const key = newKey();
      const at = gate();
      const late = requestRefund(pausedAtPolicyCheck(h.app.payments, at), lineRequest(orderNo, buyerId, [2], key));
      await at.waiting;
      const first = await requestRefund(h.app.payments, lineRequest(orderNo, buyerId, [2], key));
      at.open();
      const second = await late;
      expect(second.refundNo).toBe(first.refundNo);
      await untilQuiet(h);
      expect(await refundsOfOrder(shard(orderNo), orderNo)).toHaveLength(1);
      expect(await findPayment(shard(orderNo), payNo)).toMatchObject({ status: 'PARTLY_REFUNDED' });
    });

    it('a buyer cancel closes the open channel trade, so it can no longer be paid', async () => {
      const f = await seedActivity(h.app, { skus: [{ price_fen: 500, stock: 5 }] });
      const buyerId = ++buyer;
      const placed = await asBuyer(h, buyerId).checkout({ leaderId: f.leaderId, items: [{ activitySkuId: f.activitySkuIds[0]!, quantity: 1 }] });
      const orderNo = placed.body.orders[0].orderNo as string;
      const started = await asBuyer(h, buyerId).startPayment(orderNo, 'wechat', 'qr');
      const payNo = started.body.payNo as string;
      const cancelled = await asBuyer(h, buyerId).cancel(orderNo);
      expect(cancelled.status).toBe(200);
      await untilQuiet(h);
      expect(await findPayment(shard(orderNo), payNo)).toMatchObject({ status: 'CLOSED' });
      expect(sandbox().core.trade('wechat', payNo)!.state).toBe('CLOSED');
      expect(await payAtCashier(h, 'wechat', payNo)).not.toBe(200);
      await untilQuiet(h);
      expect(await refundsOfOrder(shard(orderNo), orderNo)).toEqual([]);
    });

    it('价保 on a line already refunded pays nothing more: a line never returns more than was paid for it', async () => {
      const { f, orderNo, payNo, buyerId, payable_fen } = await paidOrder('wechat', [{ price_fen: 1000, stock: 10 }, { price_fen: 600, stock: 10 }]);
      const line1 = (await getOrder(h.app, orderNo)).lines[0]!;
      const refunded = await requestRefund(h.app.payments, lineRequest(orderNo, buyerId, [1], newKey()));
      expect(refunded).toMatchObject({ amount_fen: line1.payable_fen });
      await untilQuiet(h);
      expect((await getOrder(h.app, orderNo)).lines[0]!.refunded_at_ms).not.toBeNull();
      await updateActivitySku(h.app.db, f.activitySkuIds[0]!, { price_fen: 700 }, h.clock.now());
      await asBuyer(h, buyerId).claimPriceProtection(orderNo, '1');
      await untilQuiet(h);
      expect(sandbox().core.refunded_fen(sandbox().core.trade('wechat', payNo)!)).toBe(line1.payable_fen);
      // The rest of the order can still be refunded in full.
      expect((await requestRefund(h.app.payments, lineRequest(orderNo, buyerId, [2], newKey()))).status).not.toBe('FAILED');
      await untilQuiet(h);
      expect(sandbox().core.refunded_fen(sandbox().core.trade('wechat', payNo)!)).toBe(payable_fen);
      expect(await getOrder(h.app, orderNo)).toMatchObject({ status: 'REFUNDED', refunded_fen: payable_fen });
    });

    it('价保 claimed before a line refund that comes first: the line refund returns the whole line, and the payout is skipped', async () => {
      const { f, orderNo, payNo, buyerId, payable_fen } = await paidOrder('wechat', [{ price_fen: 1000, stock: 10 }]);
      await updateActivitySku(h.app.db, f.activitySkuIds[0]!, { price_fen: 700 }, h.clock.now());
      // The claim is written; its payout waits in the outbox while the buyer refunds the line.
      const claimed = await asBuyer(h, buyerId).claimPriceProtection(orderNo, '1');
      expect(claimed.body).toMatchObject({ amountFen: 300 });
      await requestRefund(h.app.payments, lineRequest(orderNo, buyerId, [1], newKey()));
      await untilQuiet(h);
      const trade = sandbox().core.trade('wechat', payNo)!;
      expect(sandbox().core.refunded_fen(trade)).toBe(payable_fen);
      expect((await findRefundAmounts(orderNo)).reduce((s, r) => s + r, 0)).toBe(payable_fen);
      expect(await getOrder(h.app, orderNo)).toMatchObject({ status: 'REFUNDED', refunded_fen: payable_fen });
    });

    async function findRefundAmounts(orderNo: string) {
      return (await refundsOfOrder(shard(orderNo), orderNo)).filter((r) => r.status === 'SUCCEEDED').map((r) => r.amount_fen);
    }

    it('a success for another amount than asked is refunded, never applied, even when the process stops right after recording it', async () => {
      const f = await seedActivity(h.app, { skus: [{ price_fen: 900, stock: 5 }] });
      const buyerId = ++buyer;
      const placed = await asBuyer(h, buyerId).checkout({ leaderId: f.leaderId, items: [{ activitySkuId: f.activitySkuIds[0]!, quantity: 1 }] });
      const orderNo = placed.body.orders[0].orderNo as string;
      const started = await asBuyer(h, buyerId).startPayment(orderNo, 'alipay', 'qr');
      const payNo = started.body.payNo as string;
      // Paid at the channel; its own notice is lost, and a verified one reports another amount.
      sandbox().core.setFaults({ drop: 1 });
      expect(await payAtCashier(h, 'alipay', payNo)).toBe(200);
      // The process stops right after the success is committed: the first read after the payment's update fails.
      let updated = false;
      const crash: KyselyPlugin = {
        transformQuery: (args) => {
          const node = args.node as any;
          if (updated && node.kind === 'SelectQueryNode') throw new Error('process stopped');
          if (node.kind === 'UpdateQueryNode' && node.table?.table?.identifier?.name === 'payment_orders') updated = true;
          return args.node;
        },
        transformResult: async (args) => args.result,
      };
      const realShards = h.app.payments.platform.shards;
      const crashing: PaymentCentre = {
        ...h.app.payments,
        platform: { ...h.app.payments.platform, shards: { ...realShards, forOrderNo: (no: string) => realShards.forOrderNo(no)?.withPlugin(crash) as Db } },
      };
      await expect(applyTradeResult(crashing, { payNo, state: 'succeeded', channelTradeNo: sandbox().core.trade('alipay', payNo)!.tradeNo, amount_fen: 1, paid_at_ms: h.clock.now() })).rejects.toThrow(
        'process stopped',
      );
      // The safety nets run (the apply job, the refund follow job).
      h.clock.advance(31_000);
      await untilQuiet(h);
      expect((await getOrder(h.app, orderNo)).status).toBe('PENDING_PAYMENT');
      expect(await findPayment(shard(orderNo), payNo)).toMatchObject({ status: 'REFUNDED', disposition: 'amount_mismatch' });
      expect((await refundsOfOrder(shard(orderNo), orderNo)).map((r) => [r.reason, r.status])).toEqual([['amount_mismatch', 'SUCCEEDED']]);
    });
  });
}
