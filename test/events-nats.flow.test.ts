/**
 * The event bus on NATS JetStream, on every SQL engine. The invariants: every outbox event
 * reaches each durable consumer and is applied once, even when the broker delivers it twice or
 * it is published twice; a failing consumer is retried with backoff, then dead-lettered, and a
 * replay applies it once; two worker processes share the consumers without doing anything twice.
 * Each describe has a stream and subjects of its own, so test files never meet on the server.
 */
import { randomBytes } from 'node:crypto';
import { jetstream } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_CONSUMER_ATTEMPTS } from '../src/events/inbox.ts';
import { subjectOf } from '../src/events/broker.ts';
import { ORDER_CANCELLED, ORDER_PAID, ORDER_PLACED } from '../src/orders/index.ts';
import { availableEngines, testNatsUrl } from './support/engines.ts';
import { cartCheckout, createEffectsTable, effectAggregates, effectCounts, expectEachEffectOnce, subscribeCounters, waitFor } from './support/events.ts';
import { seedActivity, startHarness, type Harness } from './support/harness.ts';
import { untilQuiet } from './support/quiet.ts';
import { asAdmin } from './support/client.ts';

const NATS_URL = testNatsUrl();
const COUNTED = [ORDER_PLACED, ORDER_PAID, ORDER_CANCELLED];
const FAST_RETRY = { base_ms: 10, cap_ms: 50 };

function natsOf(engine: string) {
  const tag = `${engine}_${randomBytes(4).toString('hex')}`;
  return { url: NATS_URL!, stream: `TGTEST_${tag}`, subjectPrefix: `tgtest.${tag}`, consumerRetry: FAST_RETRY };
}

for (const engine of availableEngines()) {
  describe.skipIf(!NATS_URL)(`events through NATS JetStream on ${engine.name}`, () => {
    let h: Harness;
    let nc: NatsConnection;
    let failing = new Set<string>();
    const nats = natsOf(engine.name);
    beforeAll(async () => {
      h = await startHarness(engine, { nats, subscribe: (bus) => subscribeCounters(bus, COUNTED, (consumer, id) => consumer === `test.count.${ORDER_PLACED}` && failing.has(id)) });
      await createEffectsTable(h.app.db);
      nc = await connect({ servers: NATS_URL! });
    });
    afterAll(async () => {
      await h?.close();
      if (nc) {
        const jsm = await jetstream(nc).jetstreamManager();
        await jsm.streams.delete(nats.stream).catch(() => undefined);
        await nc.close();
      }
    });

    it('every order event reaches each consumer once', async () => {
      const f = await seedActivity(h.app, { skus: [{ price_fen: 500, stock: 100 }] });
      const orders = [];
      for (let i = 0; i < 30; i++) {
        const paid = i % 3 !== 0;
        orders.push({ orderNo: await cartCheckout(h, f.leaderId, f.activitySkuIds[0]!, 40_000 + i, paid), buyerId: 40_000 + i, paid });
      }
      await untilQuiet(h);
      await expectEachEffectOnce(h, f.activitySkuIds[0]!, orders);
    });

    it('drops a re-published event by its id, and applies a redelivered one once (inbox)', async () => {
      const [event] = await h.app.db.selectFrom('test_effects' as any).select(['event_id', 'aggregate_id']).where('consumer', '=', `test.count.${ORDER_PLACED}`).limit(1).execute() as { event_id: string; aggregate_id: string }[];
      const js = jetstream(nc);
      const body = JSON.stringify({ eventId: event!.event_id, type: ORDER_PLACED, aggregateId: event!.aggregate_id, payload: { orderNo: event!.aggregate_id, buyerId: 1, lines: [], placed_at_ms: 0 }, created_at_ms: 0 });
      // Within the duplicate window, the same message id is refused by the server.
      const again = await js.publish(subjectOf(nats, ORDER_PLACED), body, { msgID: event!.event_id });
      expect(again.duplicate).toBe(true);
      // Past it (another message id, the same event): delivered, and the inbox skips it.
      const late = await js.publish(subjectOf(nats, ORDER_PLACED), body, { msgID: `${event!.event_id}-late` });
      expect(late.duplicate).toBe(false);
      await untilQuiet(h);
      expect((await effectCounts(h.app)).get(`test.count.${ORDER_PLACED} ${event!.event_id}`)).toBe(1);
      for (const [key, n] of await effectCounts(h.app)) expect(n, key).toBe(1);
    });

    it('retries a failing consumer with backoff, dead-letters it after the last attempt, and a replay applies it once', async () => {
      const f = await seedActivity(h.app, { skus: [{ price_fen: 500, stock: 10 }] });
      const buyer = 41_001;
      failing = new Set();
      const orderNo = await cartCheckout(h, f.leaderId, f.activitySkuIds[0]!, buyer, false);
      failing.add(orderNo);
      await untilQuiet(h);
      expect(await h.app.db.selectFrom('cart_lines').select('buyer_id').where('buyer_id', '=', buyer).execute()).toEqual([]);
      let letter: any;
      await waitFor('the dead letter', async () => {
        const listed = (await asAdmin(h).deadLetters()).body.deadLetters;
        letter = listed.find((d: any) => d.aggregateId === orderNo);
        return letter !== undefined;
      });
      expect(letter).toMatchObject({ consumer: `test.count.${ORDER_PLACED}`, attempts: MAX_CONSUMER_ATTEMPTS, replayedAt: null });
      expect(await effectAggregates(h.app, `test.count.${ORDER_PLACED}`)).not.toContain(orderNo);
      failing = new Set();
      const replayed = await asAdmin(h).replayDeadLetter(letter.id);
      expect(replayed.body).toMatchObject({ outcome: 'applied' });
      expect((await effectAggregates(h.app, `test.count.${ORDER_PLACED}`)).filter((a) => a === orderNo)).toHaveLength(1);
    });
  });

  describe.skipIf(!NATS_URL)(`two workers sharing the NATS consumers on ${engine.name}`, () => {
    let api: Harness;
    let w1: Harness;
    let w2: Harness;
    const nats = natsOf(engine.name);
    beforeAll(async () => {
      // One API process without background work, two workers: the outbox, the consumers and the jobs are shared.
      api = await startHarness(engine, { shards: 2, worker: false, nats, subscribe: (bus) => subscribeCounters(bus, COUNTED) });
      await createEffectsTable(api.app.db);
      w1 = await startHarness(engine, { databases: api.databases, clock: api.clock, nats, subscribe: (bus) => subscribeCounters(bus, COUNTED) });
      w2 = await startHarness(engine, { databases: api.databases, clock: api.clock, nats, subscribe: (bus) => subscribeCounters(bus, COUNTED) });
    });
    afterAll(async () => {
      await w2?.close({ keepDatabases: true });
      await w1?.close({ keepDatabases: true });
      await api?.close();
      const nc = await connect({ servers: NATS_URL! });
      await (await jetstream(nc).jetstreamManager()).streams.delete(nats.stream).catch(() => undefined);
      await nc.close();
    });

    it('never applies an event or runs a job twice', async () => {
      const f = await seedActivity(api.app, { skus: [{ price_fen: 300, stock: 200 }] });
      const sku = f.activitySkuIds[0]!;
      const orders = await Promise.all(
        Array.from({ length: 40 }, async (_, i) => ({ orderNo: await cartCheckout(api, f.leaderId, sku, 50_000 + i, i % 4 !== 0), buyerId: 50_000 + i, paid: i % 4 !== 0 })),
      );
      api.clock.advance(2 * 3600_000); // the unpaid ones time out: jobs claimed by one worker each
      await untilQuiet(w1.app, w2.app);
      await expectEachEffectOnce(api, sku, orders);
      const cancelled = orders.filter((o) => !o.paid).map((o) => o.orderNo).sort();
      expect((await effectAggregates(api.app, `test.count.${ORDER_CANCELLED}`)).filter((n) => cancelled.includes(n))).toEqual(cancelled);
    });
  });
}
