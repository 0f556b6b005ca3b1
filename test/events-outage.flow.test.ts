/**
 * Broker outage, on every SQL engine: a NATS server of the test's own is killed for 30 s while
 * checkouts and payments go on, then started again. The invariants: nothing lost (every order's
 * placed and paid events reach their consumers: carts cleared, reservations confirmed) and
 * nothing applied twice (each counted effect once; sold stock equals the paid units); the
 * outboxes drain once the broker is back.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ORDER_PAID, ORDER_PLACED } from '../src/orders/index.ts';
import { availableEngines, testNatsUrl } from './support/engines.ts';
import { cartCheckout, createEffectsTable, expectEachEffectOnce, outboxCount, startPrivateNats, subscribeCounters, type PrivateNats } from './support/events.ts';
import { seedActivity, startHarness, type Harness } from './support/harness.ts';
import { untilQuiet } from './support/quiet.ts';

// A private server is started from the nats-server binary; the shared one only says NATS is wanted here.
const NATS_WANTED = testNatsUrl() !== undefined;
/** The figure: the broker is away this long. */
const OUTAGE_MS = 30_000;
const LOAD_BEFORE_MS = 2_000;
const LOAD_AFTER_MS = 2_000;
const LOAD_CONCURRENCY = 4;
const STOCK = 100_000;

for (const engine of availableEngines()) {
  describe.skipIf(!NATS_WANTED)(`broker outage under load on ${engine.name}`, () => {
    let h: Harness;
    let nats: PrivateNats;
    beforeAll(async () => {
      nats = await startPrivateNats();
      h = await startHarness(engine, { nats: { url: nats.url, stream: 'TUANGOU_EVENTS', subjectPrefix: 'tuangou.events' }, subscribe: (bus) => subscribeCounters(bus, [ORDER_PLACED, ORDER_PAID]) });
      await createEffectsTable(h.app.db);
    });
    afterAll(async () => {
      await h?.close();
      await nats?.destroy();
    });

    it('loses nothing and applies nothing twice when the broker is down for 30 s', { timeout: 180_000 }, async () => {
      const f = await seedActivity(h.app, { skus: [{ price_fen: 100, stock: STOCK, purchaseLimit: 1 }] });
      const sku = f.activitySkuIds[0]!;
      const orders: { orderNo: string; buyerId: number; paid: boolean }[] = [];
      let nextBuyer = 100_000;
      let running = true;
      const load = Promise.all(
        Array.from({ length: LOAD_CONCURRENCY }, async () => {
          while (running) {
            const buyerId = nextBuyer++;
            const paid = buyerId % 5 !== 0;
            orders.push({ orderNo: await cartCheckout(h, f.leaderId, sku, buyerId, paid), buyerId, paid });
            await new Promise((r) => setTimeout(r, 10));
          }
        }),
      );
      await new Promise((r) => setTimeout(r, LOAD_BEFORE_MS));
      const before = orders.length;
      await nats.stop();
      await new Promise((r) => setTimeout(r, OUTAGE_MS));
      const during = orders.length - before;
      // While it was away, events waited in the outbox.
      expect(await outboxCount(h.app)).toBeGreaterThan(0);
      await nats.start();
      await new Promise((r) => setTimeout(r, LOAD_AFTER_MS));
      running = false;
      await load;
      expect(before).toBeGreaterThan(0);
      expect(during).toBeGreaterThan(0);
      await untilQuiet(h);
      await expectEachEffectOnce(h, sku, orders);
    });
  });
}
