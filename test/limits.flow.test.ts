import type { KyselyPlugin } from 'kysely';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { MAX_ACTIVITY_SKUS, MAX_PRODUCT_SKUS, createMerchant, createProduct } from '../src/catalog/index.ts';
import { CHECKS, MAX_PASS_MS, MAX_REPAIRS_LISTED, runReconcilePass } from '../src/consistency/index.ts';
import { performance } from 'node:perf_hooks';
import { createCouponTemplate, issueCoupons, MAX_BUYERS_PER_ISSUE, MAX_COUPONS_LISTED, MAX_COUPONS_PER_ORDER } from '../src/coupons/index.ts';
import { hotActivities, MAX_HOT_ACTIVITIES } from '../src/catalog/activities.ts';
import { DEFAULT_MAX_JOB_ATTEMPTS, hasJobs, runDueJobs, scheduleJob } from '../src/jobs/index.ts';
import { MAX_DEAD_LETTERS_PAGE } from '../src/events/dead-letters.ts';
import { EventBus, MAX_CONSUMER_ATTEMPTS, recordEvent, startRelay } from '../src/events/index.ts';
import { MAX_DELIVERY_ATTEMPTS } from '../src/events/relay.ts';
import { MAX_ADJUSTMENTS_LISTED } from '../src/inventory/index.ts';
import { MAX_CHECKOUT_LINES, MAX_REMARK_LENGTH } from '../src/checkout/index.ts';
import { MAX_IDEMPOTENCY_KEY_LENGTH, MAX_ORDERS_PAGE } from '../src/orders/index.ts';
import { followRefund, REFUND_FOLLOW_JOB } from '../src/payments/index.ts';
import { MAX_PAYMENT_ATTEMPTS } from '../src/payments/pay.ts';
import { MAX_REFUND_FOLLOW_ATTEMPTS } from '../src/payments/refunds.ts';
import { MAX_JOURNAL_PAGE } from '../src/points/index.ts';
import { livePromotions, MAX_LIVE_PROMOTIONS, MAX_SHIPPING_STEP_UNITS, PRICING_RULES_CACHE_MS } from '../src/promotions/index.ts';
import { MAX_REVOCATION_REASON_LENGTH } from '../src/access/routes.ts';
import { MAX_BODY_BYTES } from '../src/platform/http/server.ts';
import { availableEngines } from './support/engines.ts';
import { asAdmin, asBuyer } from './support/client.ts';
import { HOUR_MS, registerBuyers, seedActivity, startHarness, writtenRows, type CatalogFixture, type Harness } from './support/harness.ts';
import { untilQuiet } from './support/quiet.ts';

/**
 * Every named limit a request can reach, at the limit and one past it, by its name: at the limit
 * the request is served; one past it is refused with the field that broke it, and writes nothing.
 * (Limits tested elsewhere: see the list in the issue's closing note.)
 */
for (const engine of availableEngines()) {
  describe(`named limits at and past them on ${engine.name}`, () => {
    let h: Harness;
    let f: CatalogFixture;
    beforeAll(async () => {
      h = await startHarness(engine);
      f = await seedActivity(h.app, { skus: Array.from({ length: MAX_CHECKOUT_LINES }, () => ({ price_fen: 100, stock: 100 })) });
    });
    afterAll(async () => h?.close());

    const one = () => ({ leaderId: f.leaderId, items: [{ activitySkuId: f.activitySkuIds[0]!, quantity: 1 }] });
    const refusedField = (reply: { status: number; body: any }) => [reply.status, reply.body.code, reply.body.field];

    it('MAX_CHECKOUT_LINES lines are one order; one more line is refused and writes nothing', async () => {
      const lines = f.activitySkuIds.map((activitySkuId) => ({ activitySkuId, quantity: 1 }));
      expect(lines).toHaveLength(MAX_CHECKOUT_LINES);
      const atLimit = await asBuyer(h, 110_001).checkout({ leaderId: f.leaderId, items: lines });
      // One merchant's goods: the checkout is one order holding every line.
      expect([atLimit.status, atLimit.body.orders.length, atLimit.body.orders[0].lines.length]).toEqual([201, 1, MAX_CHECKOUT_LINES]);
      await untilQuiet(h);
      const before = await writtenRows(h.app);
      const past = await asBuyer(h, 110_002).checkout({ leaderId: f.leaderId, items: [...lines, { activitySkuId: 9_999_999, quantity: 1 }] });
      expect(refusedField(past)).toEqual([400, 'invalid_field', 'items']);
      await untilQuiet(h);
      expect(await writtenRows(h.app)).toEqual(before);
    });

    it('a request body of MAX_BODY_BYTES bytes is read; one byte more is 413 payload_too_large', async () => {
      // JSON padded with spaces to an exact size: only its length differs.
      const sized = (bytes: number) => {
        const json = JSON.stringify(one());
        return json + ' '.repeat(bytes - Buffer.byteLength(json));
      };
      const headers = { 'content-type': 'application/json' };
      const atLimit = await asBuyer(h, 110_051).checkout(sized(MAX_BODY_BYTES), { headers });
      expect(atLimit.status).toBe(201);
      const past = await asBuyer(h, 110_051).checkout(sized(MAX_BODY_BYTES + 1), { headers });
      expect([past.status, past.body.code]).toEqual([413, 'payload_too_large']);
    });

    it('a remark of MAX_REMARK_LENGTH characters is kept; one more is refused', async () => {
      const atLimit = await asBuyer(h, 110_011).checkout({ ...one(), remark: 'r'.repeat(MAX_REMARK_LENGTH) });
      expect(atLimit.status).toBe(201);
      const past = await asBuyer(h, 110_011).checkout({ ...one(), remark: 'r'.repeat(MAX_REMARK_LENGTH + 1) });
      expect(refusedField(past)).toEqual([400, 'invalid_field', 'remark']);
    });

    it('an Idempotency-Key of MAX_IDEMPOTENCY_KEY_LENGTH characters is used; one more is refused', async () => {
      const atLimit = await asBuyer(h, 110_021).checkout(one(), { key: 'k'.repeat(MAX_IDEMPOTENCY_KEY_LENGTH) });
      expect(atLimit.status).toBe(201);
      const again = await asBuyer(h, 110_021).checkout(one(), { key: 'k'.repeat(MAX_IDEMPOTENCY_KEY_LENGTH) });
      expect(again.body.checkoutNo).toBe(atLimit.body.checkoutNo);
      expect(again.body.orders[0].orderNo).toBe(atLimit.body.orders[0].orderNo);
      const past = await asBuyer(h, 110_021).checkout(one(), { key: 'k'.repeat(MAX_IDEMPOTENCY_KEY_LENGTH + 1) });
      expect(refusedField(past)).toEqual([400, 'invalid_field', 'Idempotency-Key']);
    });

    it('MAX_COUPONS_PER_ORDER coupon ids pass the request check; one more is refused before any coupon is read', async () => {
      const ids = (n: number) => Array.from({ length: n }, (_, i) => 9_000_000 + i);
      const atLimit = await asBuyer(h, 110_031).checkout({ ...one(), couponIds: ids(MAX_COUPONS_PER_ORDER) });
      // Past the count check, the first (unknown) coupon is what is refused.
      expect(refusedField(atLimit)).toEqual([409, 'coupon_unavailable', 'couponIds.0']);
      const past = await asBuyer(h, 110_031).checkout({ ...one(), couponIds: ids(MAX_COUPONS_PER_ORDER + 1) });
      expect(refusedField(past)).toEqual([400, 'invalid_field', 'couponIds']);
    });

    it('pages: MAX_ORDERS_PAGE, MAX_JOURNAL_PAGE, MAX_DEAD_LETTERS_PAGE and MAX_REPAIRS_LISTED are served; one more is refused', async () => {
      const buyer = asBuyer(h, 110_041);
      const admin = asAdmin(h);
      const pages = [
        { limit: MAX_ORDERS_PAGE, get: (limit: number) => buyer.orders(`?limit=${limit}`) },
        { limit: MAX_JOURNAL_PAGE, get: (limit: number) => buyer.points(`?limit=${limit}`) },
        { limit: MAX_DEAD_LETTERS_PAGE, get: (limit: number) => admin.deadLetters(`?limit=${limit}`) },
        { limit: MAX_REPAIRS_LISTED, get: (limit: number) => admin.repairs(`?limit=${limit}`) },
      ];
      for (const page of pages) {
        expect((await page.get(page.limit)).status, String(page.limit)).toBe(200);
        expect(refusedField(await page.get(page.limit + 1)), String(page.limit)).toEqual([400, 'invalid_field', 'querystring.limit']);
      }
    });

    it('a SKU lists its newest MAX_ADJUSTMENTS_LISTED stock adjustments', async () => {
      const g = await seedActivity(h.app, { skus: [{ price_fen: 100, stock: 10 }] });
      const sku = g.activitySkuIds[0]!;
      for (let i = 0; i <= MAX_ADJUSTMENTS_LISTED; i++) expect((await asAdmin(h).adjustStock(sku, { delta: 1, reason: `count ${i}`, requestId: `limit-${i}` })).status).toBe(201);
      const listed = (await asAdmin(h).stockAdjustments(sku)).body.adjustments;
      expect(listed).toHaveLength(MAX_ADJUSTMENTS_LISTED);
      expect(listed[0].reason).toBe(`count ${MAX_ADJUSTMENTS_LISTED}`);
      expect(listed.map((a: any) => a.reason)).not.toContain('count 0');
    });

    it('a revocation reason of MAX_REVOCATION_REASON_LENGTH characters is recorded; one more is refused', async () => {
      const atLimit = await asAdmin(h).revokeToken({ tokenId: 'limit-token-1', reason: 'x'.repeat(MAX_REVOCATION_REASON_LENGTH) });
      expect(atLimit.status).toBe(201);
      const past = await asAdmin(h).revokeToken({ tokenId: 'limit-token-2', reason: 'x'.repeat(MAX_REVOCATION_REASON_LENGTH + 1) });
      expect(refusedField(past)).toEqual([400, 'invalid_field', 'reason']);
    });

    it('a product of MAX_PRODUCT_SKUS SKUs is created; one more SKU is refused', async () => {
      const merchant = (await asAdmin(h).createMerchant({ name: 'Limit Farm' })).body;
      const skus = (n: number) => Array.from({ length: n }, (_, i) => ({ title: `pack ${i}`, listPriceFen: 100, weightG: 100 }));
      const atLimit = await asAdmin(h).createProduct({ merchantId: merchant.id, title: 'Plums', skus: skus(MAX_PRODUCT_SKUS) });
      expect([atLimit.status, atLimit.body.skus.length]).toEqual([201, MAX_PRODUCT_SKUS]);
      const past = await asAdmin(h).createProduct({ merchantId: merchant.id, title: 'Plums', skus: skus(MAX_PRODUCT_SKUS + 1) });
      expect(refusedField(past)).toEqual([400, 'invalid_field', 'skus']);
    });

    it('an activity of MAX_ACTIVITY_SKUS SKUs is created; one more SKU is refused', async () => {
      const now = h.clock.now();
      const merchant = await createMerchant(h.app.db, { name: 'Many SKUs' }, now);
      const skuIds: number[] = [];
      while (skuIds.length <= MAX_ACTIVITY_SKUS) {
        const product = await createProduct(h.app.db, { merchantId: merchant.id, title: 'Beans', category: 'veg', skus: Array.from({ length: MAX_PRODUCT_SKUS }, (_, i) => ({ title: `bag ${i}`, listPrice_fen: 100, weight_g: 100 })) }, now);
        skuIds.push(...product.skus.map((s) => s.id));
      }
      const activity = (n: number) => ({
        title: 'Bean week', startsAt: new Date(now - 60_000).toISOString(), endsAt: new Date(now + 24 * HOUR_MS).toISOString(),
        orderCutoffAt: new Date(now + 12 * HOUR_MS).toISOString(), pickupDate: '2026-12-03',
        skus: skuIds.slice(0, n).map((skuId) => ({ skuId, priceFen: 90, stock: 1 })),
      });
      const atLimit = await asAdmin(h).createActivity(activity(MAX_ACTIVITY_SKUS));
      expect([atLimit.status, atLimit.body.skus.length]).toEqual([201, MAX_ACTIVITY_SKUS]);
      const past = await asAdmin(h).createActivity(activity(MAX_ACTIVITY_SKUS + 1));
      expect(refusedField(past)).toEqual([400, 'invalid_field', 'skus']);
    });

    it('a coupon is issued to MAX_BUYERS_PER_ISSUE buyers at once; one more buyer is refused', async () => {
      const buyerIds = Array.from({ length: MAX_BUYERS_PER_ISSUE + 1 }, (_, i) => 120_000 + i);
      await registerBuyers(h.app.db, buyerIds, h.clock.now());
      const now = h.clock.now();
      const template = await asAdmin(h).createCouponTemplate({
        name: 'for many', scope: { kind: 'platform' }, rule: { kind: 'fixed', off_fen: 100, threshold_fen: 500 },
        validFrom: new Date(now - HOUR_MS).toISOString(), validUntil: new Date(now + 24 * HOUR_MS).toISOString(), perBuyerLimit: 1,
      });
      expect(template.status).toBe(201);
      const issue = (ids: number[]) => asAdmin(h).post(`/admin/coupon-templates/${template.body.id}/issue`, { buyerIds: ids });
      const past = await issue(buyerIds);
      expect(refusedField(past)).toEqual([400, 'invalid_field', 'buyerIds']);
      const atLimit = await issue(buyerIds.slice(0, MAX_BUYERS_PER_ISSUE));
      expect(atLimit.status).toBeLessThan(300);
      const issued = await h.app.db.selectFrom('coupons').select('buyer_id').where('template_id', '=', template.body.id).execute();
      expect(issued).toHaveLength(MAX_BUYERS_PER_ISSUE);
    });

    it('a shipping step of MAX_SHIPPING_STEP_UNITS is taken; one more unit is refused', async () => {
      const merchant = (await asAdmin(h).createMerchant({ name: 'Heavy Goods' })).body;
      const rule = (first_g: number) => ({ merchantId: merchant.id, handover: 'delivery', charge: { kind: 'by_weight', first_g, first_fen: 100, additional_g: 1000, additional_fen: 100 } });
      expect((await asAdmin(h).createShippingRule(rule(MAX_SHIPPING_STEP_UNITS))).status).toBe(201);
      expect(refusedField(await asAdmin(h).createShippingRule(rule(MAX_SHIPPING_STEP_UNITS + 1)))).toEqual([400, 'invalid_field', 'charge.first_g']);
    });
  });

  describe(`limits read straight from the modules on ${engine.name}`, () => {
    let h: Harness;
    beforeAll(async () => {
      // No background jobs here: the test runs the job passes itself.
      h = await startHarness(engine, { worker: false });
    });
    afterAll(async () => h?.close());

    it('a buyer sees their newest MAX_COUPONS_LISTED coupons: all of that many, and no more when they hold one more', async () => {
      const buyerId = 110_201;
      await registerBuyers(h.app.db, [buyerId], h.clock.now());
      const now = h.clock.now();
      const perTemplate = 100; // the most coupons of one template a buyer may hold
      const issueOne = async (n: number) => {
        if (n % perTemplate === 0) {
          templateId = (await createCouponTemplate(h.app.db, { name: `many ${n}`, scope: { kind: 'platform' }, rule: { kind: 'fixed', off_fen: 1, threshold_fen: 100 }, validFrom: new Date(now - HOUR_MS).toISOString(), validUntil: new Date(now + 24 * HOUR_MS).toISOString(), perBuyerLimit: perTemplate }, now)).id;
        }
        expect((await issueCoupons(h.app.db, templateId, [buyerId], now)).issued).toHaveLength(1);
      };
      let templateId = 0;
      for (let n = 0; n < MAX_COUPONS_LISTED; n++) await issueOne(n);
      const atLimit = await asBuyer(h, buyerId).coupons();
      expect(atLimit.body.coupons).toHaveLength(MAX_COUPONS_LISTED);
      await issueOne(MAX_COUPONS_LISTED);
      const past = await asBuyer(h, buyerId).coupons();
      expect(past.body.coupons).toHaveLength(MAX_COUPONS_LISTED);
      const oldest = Math.min(...atLimit.body.coupons.map((c: any) => c.couponId));
      expect(past.body.coupons.map((c: any) => c.couponId)).not.toContain(oldest);
    });

    it('the flash-sale upkeep looks at MAX_HOT_ACTIVITIES hot activities, soonest ending first; one more waits its turn', async () => {
      const f = await seedActivity(h.app, { skus: [{ price_fen: 100, stock: 1 }] });
      const { id: _id, ...row } = await h.app.db.selectFrom('activities').selectAll().where('id', '=', f.activityId).executeTakeFirstOrThrow();
      await h.app.db.deleteFrom('activities').where('id', '=', f.activityId).execute();
      const copies = (from: number, count: number) => Array.from({ length: count }, (_, i) => ({ ...row, hot: 1, ends_at_ms: row.ends_at_ms + from + i }));
      for (let from = 0; from < MAX_HOT_ACTIVITIES; from += 50) await h.app.db.insertInto('activities').values(copies(from, 50)).execute();
      const atLimit = await hotActivities(h.app.db, h.clock.now());
      expect(atLimit).toHaveLength(MAX_HOT_ACTIVITIES);
      // One more, ending last: it is the one left for a later pass.
      await h.app.db.insertInto('activities').values(copies(MAX_HOT_ACTIVITIES, 1)).execute();
      const past = await hotActivities(h.app.db, h.clock.now());
      expect(past).toHaveLength(MAX_HOT_ACTIVITIES);
      expect(past.map((a) => a.id)).toEqual(atLimit.map((a) => a.id));
    });

    it('pricing reads MAX_LIVE_PROMOTIONS live promotions; with one more live it reads that many and warns', async () => {
      const now = h.clock.now();
      const made = await asAdmin(h).createPromotion({ name: 'many', scope: { kind: 'platform' }, rule: { kind: 'amount_off', threshold_fen: 1_000_000, off_fen: 1 }, startsAt: new Date(now - HOUR_MS).toISOString(), endsAt: new Date(now + 24 * HOUR_MS).toISOString() });
      expect(made.status).toBe(201);
      const { id: _id, ...row } = await h.app.db.selectFrom('promotions').selectAll().where('id', '=', Number(made.body.id)).executeTakeFirstOrThrow();
      const addCopies = async (count: number) => {
        for (let done = 0; done < count; done += 50) await h.app.db.insertInto('promotions').values(Array.from({ length: Math.min(50, count - done) }, () => ({ ...row }))).execute();
      };
      const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
      try {
        // Each read a cache period later, so it reads the table again.
        let reads = 0;
        const read = () => livePromotions(h.app.db, [1], now + ++reads * PRICING_RULES_CACHE_MS);
        await addCopies(MAX_LIVE_PROMOTIONS - 2);
        expect(await read()).toHaveLength(MAX_LIVE_PROMOTIONS - 1);
        expect(warn).not.toHaveBeenCalled();
        await addCopies(1);
        expect(await read()).toHaveLength(MAX_LIVE_PROMOTIONS);
        await addCopies(1);
        expect(await read()).toHaveLength(MAX_LIVE_PROMOTIONS);
        expect(warn).toHaveBeenCalledWith(expect.stringContaining(`more than ${MAX_LIVE_PROMOTIONS} promotions are live`));
      } finally {
        warn.mockRestore();
      }
    });

    it('a reconcile pass still starts its checks MAX_PASS_MS after it began; one millisecond later it starts none and reports them unfinished', async () => {
      // Invariant: a pass stops taking new work at its deadline, well inside the job's lease, so
      // a second worker never claims the reconcile job while a pass still runs.
      const began = performance.now();
      const passAfter = async (elapsed_ms: number) => {
        let calls = 0;
        // The first reading sets the deadline; every later one is elapsed_ms after it.
        const clock = vi.spyOn(performance, 'now').mockImplementation(() => (calls++ === 0 ? began : began + elapsed_ms));
        try {
          return await runReconcilePass(h.app, h.app.payments);
        } finally {
          clock.mockRestore();
        }
      };
      const atDeadline = await passAfter(MAX_PASS_MS);
      expect(atDeadline.unfinished).toEqual([]);
      const past = await passAfter(MAX_PASS_MS + 1);
      expect(past.unfinished).toEqual(CHECKS.map((check) => check.name));
      expect(past.repairs).toEqual([]);
    });

    it('a job is tried DEFAULT_MAX_JOB_ATTEMPTS times: still due after one less, dead after the last, and not tried again', async () => {
      const now = h.clock.now();
      await h.app.db.transaction().execute((trx) => scheduleJob(trx, { kind: 'test.always-fails', key: 'test.always-fails:1', payload: {}, due_at_ms: now }, now));
      let tries = 0;
      const handlers = { 'test.always-fails': async () => { tries += 1; throw new Error('fails on purpose'); } };
      const job = () => h.app.db.selectFrom('jobs').select(['attempts', 'dead_at_ms']).where('job_key', '=', 'test.always-fails:1').executeTakeFirstOrThrow();
      // A day apart: past any retry backoff.
      const pass = (n: number) => runDueJobs(h.app.db, { handlers, owner: 'limits-test', now: () => now + n * 24 * HOUR_MS, onError: () => undefined });
      for (let n = 1; n < DEFAULT_MAX_JOB_ATTEMPTS; n++) await pass(n);
      expect(await job()).toMatchObject({ attempts: DEFAULT_MAX_JOB_ATTEMPTS - 1, dead_at_ms: null });
      await pass(DEFAULT_MAX_JOB_ATTEMPTS);
      const dead = await job();
      expect(dead.attempts).toBe(DEFAULT_MAX_JOB_ATTEMPTS);
      expect(dead.dead_at_ms).not.toBeNull();
      await pass(DEFAULT_MAX_JOB_ATTEMPTS + 1);
      expect(tries).toBe(DEFAULT_MAX_JOB_ATTEMPTS);
      expect((await job()).attempts).toBe(DEFAULT_MAX_JOB_ATTEMPTS);
    });
  });

  describe(`outbox delivery at and past MAX_DELIVERY_ATTEMPTS on ${engine.name}`, () => {
    let h: Harness;
    beforeAll(async () => {
      // No relay of its own: the test's relay is the only one reading this outbox.
      h = await startHarness(engine, { worker: false });
    });
    afterAll(async () => h?.close());

    it('an event no consumer takes and no dead letter can hold is delivered MAX_DELIVERY_ATTEMPTS times: still due after one less, dead after the last, and not tried again', async () => {
      // Invariant: a bus that never works (the consumer fails and so does its dead letter) does
      // not retry an outbox row for ever; the row is set aside as dead after its last delivery.
      expect(MAX_CONSUMER_ATTEMPTS).toBeLessThan(MAX_DELIVERY_ATTEMPTS);
      const noDeadLetters: KyselyPlugin = {
        transformQuery: (args) => {
          const node = args.node as any;
          if (node.kind === 'InsertQueryNode' && node.into?.table?.identifier?.name === 'dead_letters') throw new Error('dead letters cannot be written');
          return args.node;
        },
        transformResult: async (args) => args.result,
      };
      const bus = new EventBus(h.app.db.withPlugin(noDeadLetters));
      let tries = 0;
      bus.subscribe('test.undeliverable', 'test.always-fails', async () => {
        tries += 1;
        throw new Error('fails on purpose');
      });
      let now = h.clock.now();
      const eventId = await h.app.db.transaction().execute((trx) => recordEvent(trx, { type: 'test.undeliverable', aggregateId: 'limits', payload: {} }, now));
      const relay = startRelay({ databases: [h.app.db], bus, owner: 'limits-test', now: () => now, onError: () => undefined });
      const row = () => h.app.db.selectFrom('outbox_events').select(['attempts', 'dead_at_ms']).where('event_id', '=', eventId).executeTakeFirstOrThrow();
      // A day apart: past any retry backoff, so each pass delivers the row once.
      const pass = async () => {
        now += 24 * HOUR_MS;
        await relay.drain();
      };
      try {
        for (let n = 1; n < MAX_DELIVERY_ATTEMPTS; n++) await pass();
        expect(await row()).toEqual({ attempts: MAX_DELIVERY_ATTEMPTS - 1, dead_at_ms: null });
        await pass();
        const dead = await row();
        expect(dead.attempts).toBe(MAX_DELIVERY_ATTEMPTS);
        expect(dead.dead_at_ms).not.toBeNull();
        await pass();
        expect(tries).toBe(MAX_DELIVERY_ATTEMPTS);
        expect((await row()).attempts).toBe(MAX_DELIVERY_ATTEMPTS);
        expect(await h.app.db.selectFrom('dead_letters').select('id').where('event_id', '=', eventId).execute()).toEqual([]);
      } finally {
        await relay.stop();
      }
    });
  });

  describe(`payment limits at and past them with the channel sandbox on ${engine.name}`, () => {
    let h: Harness;
    beforeAll(async () => {
      h = await startHarness(engine, { sandbox: {} });
    });
    afterAll(async () => h?.close());

    it('an order takes MAX_PAYMENT_ATTEMPTS payment attempts; one more is 409 order_not_payable', async () => {
      const f = await seedActivity(h.app, { skus: [{ price_fen: 1000, stock: 10 }] });
      const buyer = asBuyer(h, 110_101);
      const placed = await buyer.checkout({ leaderId: f.leaderId, items: [{ activitySkuId: f.activitySkuIds[0]!, quantity: 1 }] });
      expect(placed.status).toBe(201);
      const orderNo = placed.body.orders[0].orderNo as string;
      // Switching channels closes the open attempt and starts another.
      const channelOf = (attempt: number) => (attempt % 2 === 0 ? 'alipay' : 'wechat');
      for (let attempt = 0; attempt < MAX_PAYMENT_ATTEMPTS; attempt++) {
        expect((await buyer.startPayment(orderNo, channelOf(attempt))).status, `attempt ${attempt + 1}`).toBe(201);
      }
      const past = await buyer.startPayment(orderNo, channelOf(MAX_PAYMENT_ATTEMPTS));
      expect([past.status, past.body.code]).toEqual([409, 'order_not_payable']);
    });

    it('a refund still open is followed again up to attempt MAX_REFUND_FOLLOW_ATTEMPTS - 1; after that last follow it is left to a person, not rescheduled', async () => {
      // Invariant: the follow job asks the channel a bounded number of times; a refund the channel
      // never makes final does not keep a job alive for ever, and its last follow says so in the log.
      const f = await seedActivity(h.app, { skus: [{ price_fen: 1000, stock: 10 }] });
      const buyer = asBuyer(h, 110_111);
      const placed = await buyer.checkout({ leaderId: f.leaderId, items: [{ activitySkuId: f.activitySkuIds[0]!, quantity: 1 }] });
      const orderNo = placed.body.orders[0].orderNo as string;
      const { started } = await buyer.pay(orderNo, 'alipay');
      await untilQuiet(h);
      // Alipay down: every ask is unanswered, so the refund stays REQUESTED.
      h.sandbox!.core.setFaults({ down: ['alipay'] });
      const error = vi.spyOn(h.app.payments.platform.log, 'error');
      try {
        const refund = await asAdmin(h).refund(orderNo);
        expect([refund.status, refund.body.status]).toEqual([201, 'REQUESTED']);
        const { refundNo } = refund.body;
        const payNo = started.body.payNo as string;
        const shard = h.app.shards.forOrderNo(orderNo)!;
        const followJob = (attempt: number) => hasJobs(shard, `${REFUND_FOLLOW_JOB}:${refundNo}:${attempt}`);
        const lastWords = () => error.mock.calls.filter(([, message]) => String(message).startsWith('refund still open'));

        await followRefund(h.app.payments, { payNo, refundNo, attempt: MAX_REFUND_FOLLOW_ATTEMPTS - 2 });
        expect(await followJob(MAX_REFUND_FOLLOW_ATTEMPTS - 1)).toBe(true);
        expect(lastWords()).toHaveLength(0);

        await followRefund(h.app.payments, { payNo, refundNo, attempt: MAX_REFUND_FOLLOW_ATTEMPTS - 1 });
        expect(await followJob(MAX_REFUND_FOLLOW_ATTEMPTS)).toBe(false);
        expect(lastWords()).toEqual([[{ payNo, refundNo }, expect.any(String)]]);
        expect((await shard.selectFrom('payment_refunds').select('status').where('refund_no', '=', refundNo).executeTakeFirstOrThrow()).status).toBe('REQUESTED');
      } finally {
        error.mockRestore();
        h.sandbox!.core.setFaults({ down: [] });
      }
    });
  });
}
