import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { releaseReservation, reservationsOf, reserveStock } from '../src/inventory/index.ts';
import { scheduleJob } from '../src/jobs/index.ts';
import { VERIFY_RESERVATION_AFTER_MS, VERIFY_RESERVATION_JOB } from '../src/checkout/index.ts';
import { IDEMPOTENCY_LEASE_MS, paymentSucceeded } from '../src/orders/index.ts';
import { freezePoints, grantPoints, pointsAccount } from '../src/points/index.ts';
import { transaction } from '../src/platform/db/retry.ts';
import { abandonIdempotencyKey, claimIdempotencyKey, completeIdempotencyKey, requestHash } from '../src/orders/idempotency.ts';
import { slotOfBuyer } from '../src/platform/shards.ts';
import { availableEngines } from './support/engines.ts';
import { newKey, seedActivity, startHarness, stockLedger, type Harness } from './support/harness.ts';
import { asBuyer } from './support/client.ts';
import { untilQuiet } from './support/quiet.ts';

for (const engine of availableEngines()) {
  describe(`checkout recovery on ${engine.name}`, () => {
    let h: Harness;
    beforeAll(async () => {
      h = await startHarness(engine);
    });
    afterAll(async () => h?.close());

    const level = (activitySkuId: number) => stockLedger(h.app, activitySkuId);

    /** What a request does up to the moment it stalls or dies: claim the key (fixing the checkout number), reserve under it, schedule the check. */
    async function claimAndReserve(buyerId: number, key: string, body: { leaderId: number; items: { activitySkuId: number; quantity: number }[] }) {
      const shard = h.app.shards.forBuyer(buyerId);
      const claim = await claimIdempotencyKey(shard, { buyerId, key, hash: requestHash(body), checkoutNo: h.app.nextOrderNo(slotOfBuyer(buyerId), h.clock.now()) }, h.clock.now);
      if (claim.kind === 'replay') throw new Error('unexpected replay');
      const now = h.clock.now();
      await reserveStock(h.app.db, claim.checkoutNo, body.items, now, {
        firstAttempt: true,
        alsoInTransaction: (trx) =>
          scheduleJob(trx, { kind: VERIFY_RESERVATION_JOB, key: `${VERIFY_RESERVATION_JOB}:${claim.checkoutNo}`, payload: { checkoutNo: claim.checkoutNo }, due_at_ms: now + VERIFY_RESERVATION_AFTER_MS }, now),
      });
      return { shard, claim };
    }

    it('a request that outlived its lease can neither complete nor undo the request that took over', async () => {
      const f = await seedActivity(h.app, { skus: [{ price_fen: 500, stock: 10 }] });
      const sku = f.activitySkuIds[0]!;
      const buyerId = 95_001;
      const key = newKey();
      const body = { leaderId: f.leaderId, items: [{ activitySkuId: sku, quantity: 2 }] };
      const stalled = await claimAndReserve(buyerId, key, body);

      h.clock.advance(IDEMPOTENCY_LEASE_MS + 1);
      const takeover = await asBuyer(h, buyerId).checkout(body, { key });
      expect(takeover.status).toBe(201);
      // The takeover gave back the dead attempt's reservation and started over under a fresh number.
      expect(takeover.body.checkoutNo).not.toBe(stalled.claim.checkoutNo);
      expect(await reservationsOf(h.app.db, stalled.claim.checkoutNo)).toEqual([{ activitySkuId: sku, quantity: 2, state: 'released' }]);
      expect(await reservationsOf(h.app.db, takeover.body.checkoutNo)).toEqual([{ activitySkuId: sku, quantity: 2, state: 'reserved' }]);

      // The stalled request wakes up: its lease token no longer counts for anything.
      const token = (stalled.claim as { leaseToken: string }).leaseToken;
      expect(await completeIdempotencyKey(stalled.shard, { buyerId, key }, token, { status: 409, body: {} })).toBe(false);
      await abandonIdempotencyKey(stalled.shard, { buyerId, key }, token);
      const replay = await asBuyer(h, buyerId).checkout(body, { key });
      expect(replay).toEqual(takeover);
      expect(await level(sku)).toMatchObject({ available: 8, reserved: 2 });
      const orders = await stalled.shard.selectFrom('orders').select('order_no').where('buyer_id', '=', buyerId).execute();
      expect(orders).toHaveLength(1);
    });

    it('a retry while the first attempt still runs is told so, even when the stock is gone meanwhile', async () => {
      const f = await seedActivity(h.app, { skus: [{ price_fen: 500, stock: 2 }] });
      const buyerId = 95_020;
      const key = newKey();
      const body = { leaderId: f.leaderId, items: [{ activitySkuId: f.activitySkuIds[0]!, quantity: 2 }] };
      await claimAndReserve(buyerId, key, body); // the first attempt holds the key and the last units
      const retry = await asBuyer(h, buyerId).checkout(body, { key });
      expect([retry.status, retry.body.code]).toEqual([409, 'idempotency_request_in_progress']);
    });

    it('a resumed checkout takes over the dead attempt’s coupon and points correctly', async () => {
      const f = await seedActivity(h.app, { skus: [{ price_fen: 1000, stock: 10 }] });
      const buyerId = 95_010;
      await grantPoints(h.app.db, buyerId, 300, `g-${buyerId}`, 'test', h.clock.now());
      const key = newKey();
      const body = { leaderId: f.leaderId, items: [{ activitySkuId: f.activitySkuIds[0]!, quantity: 1 }], points: 300 };
      const died = await claimAndReserve(buyerId, key, body);
      await transaction(h.app.db, (trx) => freezePoints(trx, buyerId, died.claim.checkoutNo, 300, h.clock.now()));
      expect(await pointsAccount(h.app.db, buyerId)).toEqual({ balance: 300, frozen: 300, available: 0 });

      h.clock.advance(IDEMPOTENCY_LEASE_MS + 1);
      const resumed = await asBuyer(h, buyerId).checkout(body, { key });
      expect(resumed.status).toBe(201);
      expect(resumed.body).toMatchObject({ pointsUsed: 300, payableFen: 700, orders: [{ pointsUsed: 300, payableFen: 700 }] });
      expect(await pointsAccount(h.app.db, buyerId)).toEqual({ balance: 300, frozen: 300, available: 0 });
      await paymentSucceeded(h.app, resumed.body.orders[0].orderNo, { paymentNo: 'P-resume', amount_fen: 700, paid_at_ms: h.clock.now() });
      await untilQuiet(h);
      expect(await pointsAccount(h.app.db, buyerId)).toEqual({ balance: 0, frozen: 0, available: 0 });
      // The dead attempt's verification job finds its holds already given back.
      h.clock.advance(VERIFY_RESERVATION_AFTER_MS);
      await untilQuiet(h);
      expect(await pointsAccount(h.app.db, buyerId)).toEqual({ balance: 0, frozen: 0, available: 0 });
      expect(await level(f.activitySkuIds[0]!)).toMatchObject({ available: 9, reserved: 0, sold: 1 });
    });

    it('a checkout that died after reserving has its stock released by the verification job, once its lease is over', async () => {
      const f = await seedActivity(h.app, { skus: [{ price_fen: 500, stock: 10 }] });
      const sku = f.activitySkuIds[0]!;
      const buyerId = 95_002;
      const key = newKey();
      const body = { leaderId: f.leaderId, items: [{ activitySkuId: sku, quantity: 3 }] };
      const died = await claimAndReserve(buyerId, key, body);
      expect(await level(sku)).toMatchObject({ available: 7, reserved: 3 });

      // Before the check is due nothing happens.
      await untilQuiet(h);
      expect(await level(sku)).toMatchObject({ available: 7, reserved: 3 });

      h.clock.advance(VERIFY_RESERVATION_AFTER_MS + 1);
      await untilQuiet(h);
      expect(await level(sku)).toMatchObject({ available: 10, reserved: 0 });
      expect(await reservationsOf(h.app.db, died.claim.checkoutNo)).toEqual([{ activitySkuId: sku, quantity: 3, state: 'released' }]);

      // The key was freed: the client's retry places a fresh order.
      const retry = await asBuyer(h, buyerId).checkout(body, { key });
      expect(retry.status).toBe(201);
      expect(await level(sku)).toMatchObject({ available: 7, reserved: 3 });
    });

    it('the verification job leaves a placed order alone', async () => {
      const f = await seedActivity(h.app, { skus: [{ price_fen: 500, stock: 10 }] });
      const placed = await asBuyer(h, 95_003).checkout({ leaderId: f.leaderId, items: [{ activitySkuId: f.activitySkuIds[0]!, quantity: 1 }] });
      expect(placed.status).toBe(201);
      h.clock.advance(VERIFY_RESERVATION_AFTER_MS + 1);
      await untilQuiet(h);
      // The check runs well before the payment timeout: the order's stock stays reserved.
      expect(VERIFY_RESERVATION_AFTER_MS).toBeLessThan(15 * 60_000);
      expect(await reservationsOf(h.app.db, placed.body.checkoutNo)).toEqual([{ activitySkuId: f.activitySkuIds[0]!, quantity: 1, state: 'reserved' }]);
      expect(await level(f.activitySkuIds[0]!)).toMatchObject({ available: 9, reserved: 1 });
      const jobs = await h.app.db.selectFrom('jobs').select('job_key').where('job_key', 'like', `${VERIFY_RESERVATION_JOB}%`).execute();
      expect(jobs).toEqual([]);
    });

    it('re-reserving a released reservation from several attempts at once takes the stock once', async () => {
      const f = await seedActivity(h.app, { skus: [{ price_fen: 500, stock: 20 }] });
      const sku = f.activitySkuIds[0]!;
      const checkoutNo = h.app.nextOrderNo(slotOfBuyer(95_004), h.clock.now());
      await reserveStock(h.app.db, checkoutNo, [{ activitySkuId: sku, quantity: 3 }], h.clock.now(), { firstAttempt: true });
      await transaction(h.app.db, (trx) => releaseReservation(trx, checkoutNo, h.clock.now()));
      const attempts = await Promise.allSettled(
        Array.from({ length: 4 }, () => reserveStock(h.app.db, checkoutNo, [{ activitySkuId: sku, quantity: 3 }], h.clock.now(), { firstAttempt: false })),
      );
      expect(attempts.some((a) => a.status === 'fulfilled')).toBe(true);
      expect(await level(sku)).toMatchObject({ available: 17, reserved: 3 });
      await transaction(h.app.db, (trx) => releaseReservation(trx, checkoutNo, h.clock.now()));
      expect(await level(sku)).toMatchObject({ available: 20, reserved: 0 });
    });

    it('idempotency keys are case-sensitive on every engine', async () => {
      const f = await seedActivity(h.app, { skus: [{ price_fen: 500, stock: 10 }] });
      const body = { leaderId: f.leaderId, items: [{ activitySkuId: f.activitySkuIds[0]!, quantity: 1 }] };
      const upper = await asBuyer(h, 95_005).checkout(body, { key: 'Order-AbC' });
      const lower = await asBuyer(h, 95_005).checkout(body, { key: 'order-abc' });
      expect([upper.status, lower.status]).toEqual([201, 201]);
      expect(upper.body.checkoutNo).not.toBe(lower.body.checkoutNo);
      expect(upper.body.orders[0].orderNo).not.toBe(lower.body.orders[0].orderNo);
    });

    it('pages the buyer’s orders by order number without skipping any', async () => {
      const f = await seedActivity(h.app, { skus: [{ price_fen: 500, stock: 10 }] });
      const buyerId = 95_006;
      const placed: string[] = [];
      for (let i = 0; i < 5; i++) placed.push((await asBuyer(h, buyerId).checkout({ leaderId: f.leaderId, items: [{ activitySkuId: f.activitySkuIds[0]!, quantity: 1 }] })).body.orders[0].orderNo);
      const seen: string[] = [];
      let before: string | null = null;
      for (let page = 0; page < 5; page++) {
        const response: any = (await asBuyer(h, buyerId).orders(`?limit=2${before ? `&before=${before}` : ''}`)).body;
        seen.push(...response.orders.map((o: any) => o.orderNo));
        before = response.next;
        if (!before) break;
      }
      expect(seen).toEqual([...placed].reverse());
    });
  });
}
