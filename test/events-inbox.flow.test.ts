/**
 * Consumers with an inbox and dead letters on the in-process bus (the embedded default), on
 * every engine. The invariants: each consumer's effect happens once per event however often it
 * is delivered (an inbox row commits with the effect); a consumer failing past its last attempt
 * dead-letters the event for itself only, and a replay applies it once; two app processes on
 * the same databases never apply an event or run a job twice.
 */
import type { Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consumeOnce, MAX_CONSUMER_ATTEMPTS } from '../src/events/inbox.ts';
import { ORDER_CANCELLED, ORDER_PAID, ORDER_PLACED } from '../src/orders/index.ts';
import { availableEngines } from './support/engines.ts';
import { cartCheckout, createEffectsTable, effectAggregates, effectCounts, expectEachEffectOnce, subscribeCounters } from './support/events.ts';
import { HOUR_MS, seedActivity, startHarness, type Harness } from './support/harness.ts';
import { untilQuiet } from './support/quiet.ts';
import { asAdmin, asBuyer } from './support/client.ts';

const COUNTED = [ORDER_PLACED, ORDER_PAID, ORDER_CANCELLED];

for (const engine of availableEngines()) {
  describe(`event consumers in-process on ${engine.name}`, () => {
    let h: Harness;
    let failing = new Set<string>();
    beforeAll(async () => {
      h = await startHarness(engine, { subscribe: (bus) => subscribeCounters(bus, COUNTED, (consumer, aggregateId) => consumer === `test.count.${ORDER_PLACED}` && failing.has(aggregateId)) });
      await createEffectsTable(h.app.db);
    });
    afterAll(async () => h?.close());

    it('applies a consumer once however often the event arrives, concurrently too', async () => {
      const consumer = h.app.bus.find(`test.count.${ORDER_PLACED}`)!;
      const event = { eventId: 'e-dup-1', type: ORDER_PLACED, aggregateId: 'dup-1', payload: {}, created_at_ms: h.clock.now() };
      const outcomes = await Promise.all(Array.from({ length: 5 }, () => consumeOnce(consumer, event, h.clock.now())));
      expect(outcomes.filter((o) => o === 'applied')).toHaveLength(1);
      expect(await consumeOnce(consumer, event, h.clock.now())).toBe('duplicate');
      expect((await effectCounts(h.app)).get(`test.count.${ORDER_PLACED} e-dup-1`)).toBe(1);
    });

    it('a failing effect leaves neither its rows nor an inbox row', async () => {
      failing = new Set(['boom-1']);
      const consumer = h.app.bus.find(`test.count.${ORDER_PLACED}`)!;
      const event = { eventId: 'e-boom-1', type: ORDER_PLACED, aggregateId: 'boom-1', payload: {}, created_at_ms: h.clock.now() };
      await expect(consumeOnce(consumer, event, h.clock.now())).rejects.toThrow(/fails on boom-1/);
      expect(await effectAggregates(h.app, `test.count.${ORDER_PLACED}`)).not.toContain('boom-1');
      failing = new Set();
      expect(await consumeOnce(consumer, event, h.clock.now())).toBe('applied');
    });

    it('every order event reaches each consumer once', async () => {
      const f = await seedActivity(h.app, { skus: [{ price_fen: 500, stock: 100 }] });
      const orders = [];
      for (let i = 0; i < 20; i++) {
        const paid = i % 2 === 0;
        orders.push({ orderNo: await cartCheckout(h, f.leaderId, f.activitySkuIds[0]!, 10_000 + i, paid), buyerId: 10_000 + i, paid });
      }
      await untilQuiet(h);
      await expectEachEffectOnce(h, f.activitySkuIds[0]!, orders);
    });

    it('retries a failing consumer, then dead-letters the event for it alone; a replay applies it once', async () => {
      const f = await seedActivity(h.app, { skus: [{ price_fen: 500, stock: 10 }] });
      const buyer = 20_001;
      const orderNo = await cartCheckout(h, f.leaderId, f.activitySkuIds[0]!, buyer, false);
      failing = new Set([orderNo]);
      const deadLettersOfOrder = () => h.app.db.selectFrom('dead_letters').select('attempts').where('aggregate_id', '=', orderNo).execute();
      // The attempts are the outbox row's own count: the test clock runs with real time, so under
      // load an early retry (backoff of half a second) can come before the next hour step.
      const deliveries = async () => {
        const row = await h.app.db.selectFrom('outbox_events').select('attempts').where('aggregate_id', '=', orderNo).where('event_type', '=', ORDER_PLACED).executeTakeFirst();
        return row === undefined ? undefined : Number(row.attempts);
      };
      let seenLastButOne = false;
      for (let step = 1; step <= 2 * MAX_CONSUMER_ATTEMPTS; step++) {
        await untilQuiet(h);
        const attempts = await deliveries();
        if (attempts === undefined) break; // dead-lettered for the failing consumer: the row is done
        // One attempt short of MAX_CONSUMER_ATTEMPTS the event is still retried, not yet a dead letter.
        if (attempts === MAX_CONSUMER_ATTEMPTS - 1) {
          expect(await deadLettersOfOrder()).toEqual([]);
          seenLastButOne = true;
        }
        h.clock.advance(HOUR_MS); // past the retry backoff
      }
      expect(seenLastButOne).toBe(true);
      expect(await deliveries()).toBeUndefined();
      await untilQuiet(h);
      // The other consumers of the event went on: the cart is cleared, once.
      expect(await h.app.db.selectFrom('cart_lines').select('buyer_id').where('buyer_id', '=', buyer).execute()).toEqual([]);
      expect(await effectAggregates(h.app, `test.count.${ORDER_PLACED}`)).not.toContain(orderNo);

      const listed = (await asAdmin(h).deadLetters()).body.deadLetters;
      const letter = listed.find((d: any) => d.aggregateId === orderNo);
      expect(letter).toMatchObject({ consumer: `test.count.${ORDER_PLACED}`, eventType: ORDER_PLACED, attempts: MAX_CONSUMER_ATTEMPTS, replayedAt: null });
      expect(letter.lastError).toMatch(/fails on/);
      expect((await asBuyer(h, buyer).get('/admin/dead-letters')).status).toBe(403);

      // Still failing: the replay says so and the letter stays open.
      const again = await asAdmin(h).replayDeadLetter(letter.id);
      expect(again.status).toBe(409);
      expect(again.body.code).toBe('event_replay_failed');

      failing = new Set();
      const replayed = await asAdmin(h).replayDeadLetter(letter.id);
      expect(replayed.status).toBe(200);
      expect(replayed.body).toMatchObject({ outcome: 'applied', deadLetter: { id: letter.id, attempts: MAX_CONSUMER_ATTEMPTS + 1 } });
      const twice = await asAdmin(h).replayDeadLetter(letter.id);
      expect(twice.body.outcome).toBe('already_replayed');
      expect(await effectAggregates(h.app, `test.count.${ORDER_PLACED}`)).toContain(orderNo);
      expect((await effectAggregates(h.app, `test.count.${ORDER_PLACED}`)).filter((a) => a === orderNo)).toHaveLength(1);
      const open = (await asAdmin(h).deadLetters('?state=open')).body.deadLetters;
      expect(open.some((d: any) => d.id === letter.id)).toBe(false);
      expect((await asAdmin(h).replayDeadLetter('999999')).status).toBe(404);
    });
  });

  describe(`two app processes on one set of databases on ${engine.name}`, () => {
    let a: Harness;
    let b: Harness;
    beforeAll(async () => {
      a = await startHarness(engine, { shards: 2, subscribe: (bus) => subscribeCounters(bus, COUNTED) });
      await createEffectsTable(a.app.db);
      b = await startHarness(engine, { databases: a.databases, clock: a.clock, subscribe: (bus) => subscribeCounters(bus, COUNTED) });
    });
    afterAll(async () => {
      await b?.close({ keepDatabases: true });
      await a?.close();
    });

    it('never applies an event or runs a job twice', async () => {
      const f = await seedActivity(a.app, { skus: [{ price_fen: 300, stock: 200 }] });
      const sku = f.activitySkuIds[0]!;
      const orders = await Promise.all(
        Array.from({ length: 40 }, async (_, i) => {
          const buyerId = 30_000 + i;
          const paid = i % 4 !== 0;
          return { orderNo: await cartCheckout(i % 2 ? a : b, f.leaderId, sku, buyerId, paid), buyerId, paid };
        }),
      );
      await untilQuiet(a.app, b.app);
      // The unpaid ones time out: a job each, claimed by one of the two processes.
      a.clock.advance(2 * HOUR_MS);
      await untilQuiet(a.app, b.app);
      await expectEachEffectOnce(a, sku, orders);
      const cancelled = orders.filter((o) => !o.paid).map((o) => o.orderNo).sort();
      expect((await effectAggregates(a.app, `test.count.${ORDER_CANCELLED}`)).filter((n) => cancelled.includes(n))).toEqual(cancelled);
      const level = await (a.app.db as Kysely<any>).selectFrom('stock').select(['available', 'reserved', 'sold']).where('activity_sku_id', '=', sku).executeTakeFirstOrThrow();
      expect(level).toMatchObject({ available: 200 - (orders.length - cancelled.length), reserved: 0, sold: orders.length - cancelled.length });
    });
  });
}
