import { transaction } from '../src/platform/db/retry.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CART_HOLD_TTL_MS, expireCartHold } from '../src/cart/index.ts';
import { holdKeyOf, releaseReservation, reservationsOf, reserveStock } from '../src/inventory/index.ts';
import { availableEngines } from './support/engines.ts';
import { seedActivity, startHarness, stockLedger, type Harness } from './support/harness.ts';
import { asBuyer } from './support/client.ts';
import { untilQuiet } from './support/quiet.ts';

for (const engine of availableEngines()) {
  describe(`on-add-to-cart inventory mode (加购减库存) on ${engine.name}`, () => {
    let h: Harness;
    beforeAll(async () => {
      h = await startHarness(engine);
    });
    afterAll(async () => h?.close());

    const level = (activitySkuId: number) => stockLedger(h.app, activitySkuId);

    it('holds stock when added, follows quantity changes, and gives it back on removal', async () => {
      const f = await seedActivity(h.app, { skus: [{ price_fen: 500, stock: 10 }], inventoryMode: 'on_add_to_cart' });
      const sku = f.activitySkuIds[0]!;
      const added = (await asBuyer(h, 99_800).cart.add(sku, 3)).body;
      expect(added.lines[0].heldUntil).not.toBeNull();
      expect(await level(sku)).toMatchObject({ available: 7, reserved: 3 });
      await asBuyer(h, 99_800).cart.setQuantity(sku, 1);
      expect(await level(sku)).toMatchObject({ available: 9, reserved: 1 });
      await asBuyer(h, 99_800).cart.remove(sku);
      expect(await level(sku)).toMatchObject({ available: 10, reserved: 0 });
      // Nobody can add more than is left.
      await asBuyer(h, 99_801).cart.add(sku, 8);
      const over = await asBuyer(h, 99_802).cart.add(sku, 3);
      expect([over.status, over.body.code]).toEqual([409, 'insufficient_stock']);
    });

    it('concurrent adds to one line hold exactly what the line ends up with', async () => {
      const f = await seedActivity(h.app, { skus: [{ price_fen: 500, stock: 50 }], inventoryMode: 'on_add_to_cart' });
      const sku = f.activitySkuIds[0]!;
      await asBuyer(h, 99_805).cart.add(sku, 1);
      await Promise.all(Array.from({ length: 6 }, () => asBuyer(h, 99_805).cart.add(sku, 1)));
      const line = (await asBuyer(h, 99_805).cart.get()).body.lines[0];
      expect(await level(sku)).toMatchObject({ reserved: line.quantity });
      expect(line.quantity).toBe(7);
    });

    it('a hold expires after its TTL and the line stays in the cart, unheld', async () => {
      const f = await seedActivity(h.app, { skus: [{ price_fen: 500, stock: 10 }], inventoryMode: 'on_add_to_cart' });
      const sku = f.activitySkuIds[0]!;
      await asBuyer(h, 99_810).cart.add(sku, 4);
      h.clock.advance(CART_HOLD_TTL_MS / 2);
      await asBuyer(h, 99_810).cart.setQuantity(sku, 5); // touching renews
      h.clock.advance(CART_HOLD_TTL_MS / 2 + 1);
      await untilQuiet(h);
      expect(await level(sku)).toMatchObject({ reserved: 5 });
      h.clock.advance(CART_HOLD_TTL_MS);
      await untilQuiet(h);
      expect(await level(sku)).toMatchObject({ available: 10, reserved: 0 });
      const view = (await asBuyer(h, 99_810).cart.get()).body;
      expect(view.lines.map((l: any) => [l.quantity, l.heldUntil])).toEqual([[5, null]]);
    });

    it('checkout carries the held units into the order, even when nobody else could get any', async () => {
      const f = await seedActivity(h.app, { skus: [{ price_fen: 500, stock: 10 }], inventoryMode: 'on_add_to_cart' });
      const sku = f.activitySkuIds[0]!;
      await asBuyer(h, 99_820).cart.add(sku, 2);
      await asBuyer(h, 99_821).cart.add(sku, 8);
      expect(await level(sku)).toMatchObject({ available: 0, reserved: 10 });
      const placed = await asBuyer(h, 99_820).checkout({ leaderId: f.leaderId, items: [{ activitySkuId: sku, quantity: 2 }] });
      expect(placed.status).toBe(201);
      expect(await level(sku)).toMatchObject({ available: 0, reserved: 10 });
      expect(await reservationsOf(h.app.db, placed.body.checkoutNo)).toEqual([{ activitySkuId: sku, quantity: 2, state: 'reserved' }]);
      // A buyer with no hold finds nothing left.
      const none = await asBuyer(h, 99_822).checkout({ leaderId: f.leaderId, items: [{ activitySkuId: sku, quantity: 1 }] });
      expect(none.body.code).toBe('insufficient_stock');
      // More than was held: the rest must come from available stock.
      const more = await asBuyer(h, 99_821).checkout({ leaderId: f.leaderId, items: [{ activitySkuId: sku, quantity: 9 }] });
      expect(more.body.code).toBe('insufficient_stock');
      expect(await level(sku)).toMatchObject({ available: 0, reserved: 10 });
      await untilQuiet(h);
      expect((await asBuyer(h, 99_820).cart.get()).body.lines).toEqual([]);
    });

    it('a checkout that fails after taking the held units gives them back to the hold, unless the hold has expired', async () => {
      const f = await seedActivity(h.app, { skus: [{ price_fen: 500, stock: 5 }], inventoryMode: 'on_add_to_cart' });
      const sku = f.activitySkuIds[0]!;
      const buyer = 99_850;
      await asBuyer(h, buyer).cart.add(sku, 3);
      const holdKey = holdKeyOf(buyer, sku);
      // The reservation step of a checkout, then its undo (a later step failed).
      const checkoutNo = '00000000000000000099850';
      await reserveStock(h.app.db, checkoutNo, [{ activitySkuId: sku, quantity: 3, fromHold: holdKey }], h.clock.now(), { firstAttempt: true });
      expect(await reservationsOf(h.app.db, holdKey)).toEqual([{ activitySkuId: sku, quantity: 3, state: 'transferred' }]);
      await transaction(h.app.db, (trx) => releaseReservation(trx, checkoutNo, h.clock.now()));
      expect(await reservationsOf(h.app.db, holdKey)).toEqual([{ activitySkuId: sku, quantity: 3, state: 'reserved' }]);
      expect(await level(sku)).toMatchObject({ available: 2, reserved: 3 });
      // Taken again, the hold expires meanwhile, then the undo: nothing goes back to the expired hold.
      const again = '00000000000000000099851';
      await reserveStock(h.app.db, again, [{ activitySkuId: sku, quantity: 3, fromHold: holdKey }], h.clock.now(), { firstAttempt: true });
      const line = (await asBuyer(h, buyer).cart.get()).body.lines[0];
      await expireCartHold(h.app.db, { buyerId: buyer, activitySkuId: sku, expires_at_ms: Date.parse(line.heldUntil) }, h.clock.now());
      await transaction(h.app.db, (trx) => releaseReservation(trx, again, h.clock.now()));
      expect((await reservationsOf(h.app.db, holdKey))[0]!.state).toBe('released');
      expect(await level(sku)).toMatchObject({ available: 5, reserved: 0 });
    });

    it('a hold expiring while its checkout runs: the units are counted once either way', async () => {
      for (let round = 0; round < 5; round++) {
        const f = await seedActivity(h.app, { skus: [{ price_fen: 500, stock: 5 }], inventoryMode: 'on_add_to_cart' });
        const sku = f.activitySkuIds[0]!;
        const buyer = 99_830 + round;
        await asBuyer(h, buyer).cart.add(sku, 3);
        const line = (await asBuyer(h, buyer).cart.get()).body.lines[0];
        const expires_at_ms = Date.parse(line.heldUntil);
        const [placed] = await Promise.all([
          asBuyer(h, buyer).checkout({ leaderId: f.leaderId, items: [{ activitySkuId: sku, quantity: 3 }] }),
          expireCartHold(h.app.db, { buyerId: buyer, activitySkuId: sku, expires_at_ms }, h.clock.now()),
        ]);
        await untilQuiet(h);
        expect(placed.status).toBe(201);
        expect(await level(sku)).toMatchObject({ available: 2, reserved: 3 });
      }
    });
  });
}
