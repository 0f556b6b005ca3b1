import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addToCart } from '../src/cart/index.ts';
import { RECONCILE_JOB, runReconcilePass, scheduleFirstPass } from '../src/consistency/index.ts';
import { reservationsOf, reserveStock } from '../src/inventory/index.ts';
import { expireJobKey, getOrder } from '../src/orders/index.ts';
import { claimIdempotencyKey, requestHash } from '../src/orders/idempotency.ts';
import { findPayment } from '../src/payments/index.ts';
import { grantPoints, pointsAccount } from '../src/points/index.ts';
import { slotOfBuyer } from '../src/platform/shards.ts';
import { availableEngines } from './support/engines.ts';
import { channelAccountsOf, HOUR_MS, newKey, seedActivity, startHarness, stockLedger, type Harness } from './support/harness.ts';
import { asAdmin, asBuyer } from './support/client.ts';
import { untilQuiet } from './support/quiet.ts';

/**
 * The consistency reconciler, on every engine. Each invariant is broken in the database the way
 * a crash leaves it (a job or an event's effect lost); one pass repairs each exactly once and logs
 * it once; a second pass finds nothing; and what is merely in flight — a checkout between its
 * reservation and its order, an unpaid order inside its timeout — is left alone.
 */
for (const engine of availableEngines()) {
  describe(`consistency reconciler on ${engine.name}`, () => {
    let h: Harness;
    beforeAll(async () => {
      h = await startHarness(engine);
    });
    afterAll(async () => h?.close());

    const cancel = (buyerId: number, orderNo: string) =>
      asBuyer(h, buyerId).cancel(orderNo);
    const repairRows = async () => (await asAdmin(h).repairs('?limit=200')).body.repairs as any[];

    it('repairs what a crash left half done, once, and leaves what is in flight alone', async () => {
      const f = await seedActivity(h.app, { skus: [{ price_fen: 1000, stock: 100 }, { price_fen: 500, stock: 100 }] });
      const [sku, other] = f.activitySkuIds as [number, number];
      const db = h.app.db;
      const item = (quantity = 1) => ({ leaderId: f.leaderId, items: [{ activitySkuId: sku, quantity }] });
      // One merchant: a checkout of one order. Its holds are kept under the checkout number.
      const place = async (buyerId: number, body: object = item()) => {
        const placed = await asBuyer(h, buyerId).checkout(body);
        expect(placed.status).toBe(201);
        expect(placed.body.orders).toHaveLength(1);
        return { checkoutNo: placed.body.checkoutNo as string, orderNo: placed.body.orders[0].orderNo as string, merchantId: placed.body.orders[0].merchantId as number };
      };

      // A: a checkout reserved stock and died before its order; its verification job is lost too.
      const orphanNo = h.app.nextOrderNo(slotOfBuyer(96_001), h.clock.now());
      await reserveStock(db, orphanNo, [{ activitySkuId: sku, quantity: 2 }], h.clock.now(), { firstAttempt: true });

      // B: an unpaid order whose timeout job is gone.
      const overdue = await place(96_002);
      const overdueNo = overdue.orderNo;
      // C: a success recorded (SUCCEEDED, not yet taken to the order) and its apply job lost. Its
      // timeout job is gone too, so it is also overdue: the payment must win, the order be paid.
      const paid = await place(96_003);
      const paidNo = paid.orderNo;
      await untilQuiet(h);
      const shardC = h.app.shards.forOrderNo(paidNo)!;
      // The timeout job is the checkout's.
      for (const { checkoutNo } of [overdue, paid]) {
        const deleted = await h.app.shards.forOrderNo(checkoutNo)!.deleteFrom('jobs').where('job_key', '=', expireJobKey(checkoutNo)).executeTakeFirst();
        expect(deleted.numDeletedRows).toBe(1n);
      }
      const payNo = `P${h.app.nextOrderNo(slotOfBuyer(96_003), h.clock.now())}`;
      const payable_fen = (await getOrder(h.app, paidNo)).payable_fen;
      await shardC
        .insertInto('payment_orders')
        .values({
          pay_no: payNo, order_no: paidNo, buyer_id: 96_003, channel: 'alipay', method: 'qr', amount_fen: payable_fen, currency: 'CNY', status: 'SUCCEEDED', version: 1,
          open_order_no: null, channel_trade_no: 'T-C', pay_action: null, disposition: null, refund_committed_fen: 0, refunded_fen: 0, finished: 0,
          combine_no: null, sub_merchant_id: channelAccountsOf(paid.merchantId).alipay,
          expires_at_ms: h.clock.now() + HOUR_MS, created_at_ms: h.clock.now(), updated_at_ms: h.clock.now(), succeeded_at_ms: h.clock.now(), closed_at_ms: null,
        })
        .execute();

      // D: a cancelled order whose order.cancelled effects were lost: stock still reserved, a
      // coupon still locked, points still frozen.
      await grantPoints(db, 96_004, 1000, 'consistency-d', 'test', h.clock.now());
      const cancelled = await place(96_004, { ...item(3), points: 100 });
      const cancelledNo = cancelled.checkoutNo;
      expect((await cancel(96_004, cancelled.orderNo)).status).toBe(200);
      await untilQuiet(h);
      await db.updateTable('stock_reservations').set({ state: 'reserved' }).where('order_no', '=', cancelledNo).execute();
      await db.updateTable('stock').set((eb) => ({ available: eb('available', '-', 3), reserved: eb('reserved', '+', 3) })).where('activity_sku_id', '=', sku).execute();
      await db.insertInto('coupons').values({ template_id: 1, buyer_id: 96_004, state: 'locked', order_no: cancelledNo, issued_at_ms: h.clock.now(), updated_at_ms: h.clock.now() }).execute();
      await db.deleteFrom('points_journal').where('dedupe_key', '=', `unfreeze:${cancelledNo}`).execute();
      await db.updateTable('points_accounts').set((eb) => ({ frozen: eb('frozen', '+', 100) })).where('buyer_id', '=', 96_004).execute();

      // E: an order placed from the cart whose order.placed effect (clearing the cart) was lost.
      await addToCart(db, 96_005, sku, 1, h.clock.now());
      await addToCart(db, 96_005, other, 1, h.clock.now());
      const cartNo = (await place(96_005)).orderNo;
      await untilQuiet(h);
      const placed_at_ms = (await getOrder(h.app, cartNo)).created_at_ms;
      await db.insertInto('cart_lines').values({ buyer_id: 96_005, activity_sku_id: sku, quantity: 1, selected: 1, hold_expires_at_ms: null, added_at_ms: placed_at_ms - 5, updated_at_ms: placed_at_ms - 5 }).execute();

      h.clock.advance(HOUR_MS);

      // In flight, and healthy: a checkout between its reservation and its order, and an unpaid
      // order inside its timeout whose coupon has been locked since long before.
      const midNo = h.app.nextOrderNo(slotOfBuyer(96_006), h.clock.now());
      const midBody = item(1);
      const claim = await claimIdempotencyKey(h.app.shards.forBuyer(96_006), { buyerId: 96_006, key: newKey(), hash: requestHash(midBody), checkoutNo: midNo }, h.clock.now);
      expect(claim.kind).toBe('new');
      await reserveStock(db, midNo, midBody.items, h.clock.now(), { firstAttempt: true });
      const live = await place(96_007);
      const liveNo = live.orderNo;
      await db.insertInto('coupons').values({ template_id: 1, buyer_id: 96_007, state: 'locked', order_no: live.checkoutNo, issued_at_ms: 0, updated_at_ms: 0 }).execute();
      await untilQuiet(h);

      const first = await runReconcilePass(h.app, h.app.payments);
      expect(first.failures).toEqual([]);
      const done = first.repairs.map((r) => [r.check, r.key, r.action]).sort();
      expect(done).toEqual(
        [
          ['unapplied_payments', payNo, 'applied_payment'],
          ['overdue_orders', overdueNo, 'expired_order'],
          ['orphan_reservations', orphanNo, 'released_checkout_holds'],
          ['orphan_reservations', cancelledNo, 'released_reservation'],
          ['locked_coupons', cancelledNo, 'returned_coupons'],
          ['frozen_points', cancelledNo, 'unfroze_points'],
          ['ordered_cart_lines', cartNo, 'removed_cart_lines'],
        ].sort(),
      );

      // Each repaired as its owning module would have done it.
      expect(await reservationsOf(db, orphanNo)).toEqual([{ activitySkuId: sku, quantity: 2, state: 'released' }]);
      expect((await getOrder(h.app, overdueNo)).status).toBe('CANCELLED');
      expect((await getOrder(h.app, paidNo)).status).toBe('PAID');
      expect((await findPayment(shardC, payNo))!.disposition).toBe('applied');
      expect(await reservationsOf(db, cancelledNo)).toEqual([{ activitySkuId: sku, quantity: 3, state: 'released' }]);
      expect(await db.selectFrom('coupons').select(['state', 'order_no']).where('buyer_id', '=', 96_004).execute()).toEqual([{ state: 'available', order_no: null }]);
      expect(await pointsAccount(db, 96_004)).toEqual({ balance: 1000, frozen: 0, available: 1000 });
      expect(await db.selectFrom('cart_lines').select('activity_sku_id').where('buyer_id', '=', 96_005).execute()).toEqual([{ activity_sku_id: other }]);

      // In flight: untouched.
      expect(await reservationsOf(db, midNo)).toEqual([{ activitySkuId: sku, quantity: 1, state: 'reserved' }]);
      expect((await getOrder(h.app, liveNo)).status).toBe('PENDING_PAYMENT');
      expect(await db.selectFrom('coupons').select('state').where('order_no', '=', live.checkoutNo).execute()).toEqual([{ state: 'locked' }]);

      // Logged once each; the order events the repairs wrote run; nothing is left to find.
      expect((await repairRows()).map((r) => [r.check, r.key]).sort()).toEqual(done.map(([check, key]) => [check, key]));
      await untilQuiet(h);
      const second = await runReconcilePass(h.app, h.app.payments, { cursors: first.cursors });
      expect([second.repairs, second.failures]).toEqual([[], []]);
      const fresh = await runReconcilePass(h.app, h.app.payments);
      expect([fresh.repairs, fresh.failures]).toEqual([[], []]);
      expect(await repairRows()).toHaveLength(7);
      for (const id of [sku, other]) await stockLedger(h.app, id);
      expect(await stockLedger(h.app, sku)).toMatchObject({ reserved: 1 + 1, sold: 1 }); // the checkout in flight and the live order; C sold
    });

    it('lists repairs newest first, by check, for admins only', async () => {
      const all = await repairRows();
      expect(all.length).toBeGreaterThan(0);
      expect(all.map((r) => r.id)).toEqual([...all.map((r) => r.id)].sort((a, b) => b - a));
      const byCheck = (await asAdmin(h).repairs('?check=frozen_points')).body;
      expect(byCheck.repairs.map((r: any) => r.check)).toEqual(['frozen_points']);
      const buyer = await asBuyer(h, 1).get('/admin/consistency/repairs');
      expect(buyer.status).toBe(403);
    });

    it('the first pass schedules itself once, and each pass schedules the next', async () => {
      const chain = () => h.app.db.selectFrom('jobs').select(['job_key', 'due_at_ms']).where('kind', '=', RECONCILE_JOB).execute();
      expect(await chain()).toEqual([]); // the harness starts none
      expect(await scheduleFirstPass(h.app, 1000)).toBe(true);
      expect(await scheduleFirstPass(h.app, 1000)).toBe(false); // a second process starting finds it
      expect((await chain()).map((j) => j.job_key)).toEqual([`${RECONCILE_JOB}:seed`]);
      h.clock.advance(2000);
      await untilQuiet(h);
      const next = await chain();
      expect(next).toHaveLength(1);
      expect(next[0]!.job_key).toMatch(new RegExp(`^${RECONCILE_JOB}:after:\\d+$`));
      expect(next[0]!.due_at_ms).toBeGreaterThan(h.clock.now());
    });
  });
}
