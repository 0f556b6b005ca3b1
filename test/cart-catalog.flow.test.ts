import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_CART_LINES, MAX_LINE_QUANTITY } from '../src/cart/index.ts';
import { availableEngines } from './support/engines.ts';
import { seedActivity, startHarness, type Harness } from './support/harness.ts';
import { asAdmin, asBuyer } from './support/client.ts';

for (const engine of availableEngines()) {
  describe(`cart and catalog on ${engine.name}`, () => {
    let h: Harness;
    beforeAll(async () => {
      h = await startHarness(engine);
    });
    afterAll(async () => h?.close());


    it('holds at most MAX_CART_LINES lines and MAX_LINE_QUANTITY per line', async () => {
      const f = await seedActivity(h.app, { skus: Array.from({ length: MAX_CART_LINES + 1 }, () => ({ price_fen: 100, stock: 500 })) });
      const buyer = 90_001;
      for (const id of f.activitySkuIds.slice(0, MAX_CART_LINES)) {
        const r = await asBuyer(h, buyer).cart.add(id, 1);
        expect(r.status).toBe(200);
      }
      const over = await asBuyer(h, buyer).cart.add(f.activitySkuIds[MAX_CART_LINES], 1);
      expect([over.status, over.body.code]).toEqual([422, 'cart_full']);

      const first = f.activitySkuIds[0]!;
      const atLimit = await asBuyer(h, buyer).cart.setQuantity(first, MAX_LINE_QUANTITY);
      expect(atLimit.status).toBe(200);
      const pastLimit = await asBuyer(h, buyer).cart.add(first, 1);
      expect([pastLimit.status, pastLimit.body.code]).toEqual([422, 'line_quantity_exceeded']);
      const pastSchema = await asBuyer(h, buyer).cart.setQuantity(first, MAX_LINE_QUANTITY + 1);
      expect([pastSchema.status, pastSchema.body.field]).toEqual([400, 'quantity']);

      const unselected = await asBuyer(h, buyer).cart.select({ selected: false });
      expect(unselected.body.lines.every((l: any) => !l.selected)).toBe(true);
      expect(unselected.body.selectedTotalFen).toBe(0);
      const removed = await asBuyer(h, buyer).cart.remove(first);
      expect(removed.body.lines).toHaveLength(MAX_CART_LINES - 1);
      const again = await asBuyer(h, buyer).cart.remove(first);
      expect(again.status).toBe(404);
    });

    it('shows lines of sold-out and ended activities as unavailable', async () => {
      const f = await seedActivity(h.app, { skus: [{ price_fen: 100, stock: 1 }, { price_fen: 200, stock: 5 }] });
      const buyer = 90_002;
      for (const id of f.activitySkuIds) await asBuyer(h, buyer).cart.add(id, 1);
      expect((await asBuyer(h, 90_003).checkout({ leaderId: f.leaderId, items: [{ activitySkuId: f.activitySkuIds[0]!, quantity: 1 }] })).status).toBe(201);
      const cart = (await asBuyer(h, buyer).cart.get()).body;
      expect(cart.lines.map((l: any) => l.availability)).toEqual(['sold_out', 'available']);
      h.clock.advance(25 * 3600_000);
      const later = (await asBuyer(h, buyer).cart.get()).body;
      expect(later.lines.map((l: any) => l.availability)).toEqual(['activity_closed', 'activity_closed']);
      h.clock.advance(-25 * 3600_000);
    });

    it('an admin creates a merchant, a product and an activity, then edits them; buyers may not', async () => {
      const merchant = await asAdmin(h).createMerchant({ name: '果园 Orchard' });
      expect(merchant.status).toBe(201);
      const leader = await asAdmin(h).createLeader({ name: 'Lu', community: 'Riverside', address: 'Block 3' });
      const product = await asAdmin(h).createProduct({ merchantId: merchant.body.id, title: 'Pears', skus: [{ title: '1kg', listPriceFen: 1800, weightG: 1000 }] });
      expect(product.status).toBe(201);
      const skuId = product.body.skus[0].id;
      const now = h.clock.now();
      const activityBody = {
        title: 'Pear week', startsAt: new Date(now - 60_000).toISOString(), endsAt: new Date(now + 86_400_000).toISOString(),
        orderCutoffAt: new Date(now + 43_200_000).toISOString(), pickupDate: '2026-12-02',
        skus: [{ skuId, priceFen: 1290, stock: 40, purchaseLimit: 2 }],
      };
      const forbidden = await asBuyer(h, 1).post('/admin/activities', activityBody);
      expect([forbidden.status, forbidden.body.code]).toEqual([403, 'forbidden']);
      const badWindow = await asAdmin(h).createActivity({ ...activityBody, orderCutoffAt: new Date(now + 2 * 86_400_000).toISOString() });
      expect([badWindow.status, badWindow.body.field]).toEqual([400, 'orderCutoffAt']);
      const otherMode = await asAdmin(h).createActivity({ ...activityBody, inventoryMode: 'on_a_whim' });
      expect([otherMode.status, otherMode.body.field]).toEqual([400, 'inventoryMode']);

      const created = await asAdmin(h).createActivity(activityBody);
      expect(created.status).toBe(201);
      const activity = created.body;
      expect(activity).toMatchObject({ state: 'open', inventoryMode: 'on_order', skus: [{ priceFen: 1290, available: 40, total: 40, purchaseLimit: 2 }] });
      const activitySkuId = activity.skus[0].activitySkuId;

      const repriced = await asAdmin(h).updateActivitySku(activitySkuId, { priceFen: 990, purchaseLimit: null });
      expect(repriced.body).toMatchObject({ priceFen: 990, purchaseLimit: null });
      const renamed = await asAdmin(h).updateActivity(activity.id, { title: 'Pear fortnight' });
      expect(renamed.body.title).toBe('Pear fortnight');

      const order = await asBuyer(h, 90_010).checkout({ leaderId: leader.body.id, items: [{ activitySkuId, quantity: 3 }] });
      expect(order.status).toBe(201);
      expect(order.body).toMatchObject({ payableFen: 2970, orders: [{ merchantId: merchant.body.id, payableFen: 2970, lines: [{ unitPriceFen: 990, title: 'Pears 1kg' }] }] });
      const listed = (await h.http.inject({ method: 'GET', url: '/activities' })).json();
      const shown = listed.activities.find((a: any) => a.id === activity.id);
      expect(shown.skus[0]).toMatchObject({ available: 37, total: 40 });
    });
  });
}
