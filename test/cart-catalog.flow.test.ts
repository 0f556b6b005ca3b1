import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_CART_LINES, MAX_LINE_QUANTITY } from '../src/cart/index.ts';
import { availableEngines } from './support/engines.ts';
import { seedActivity, startHarness, type Harness } from './support/harness.ts';
import { asBuyer } from './support/client.ts';

for (const engine of availableEngines()) {
  describe(`cart and catalog on ${engine.name}`, () => {
    let h: Harness;
    beforeAll(async () => {
      h = await startHarness(engine);
    });
    afterAll(async () => h?.close());

    const as = (buyerId: number) => ({ authorization: `Bearer ${h.buyerToken(buyerId)}` });

    it('holds at most MAX_CART_LINES lines and MAX_LINE_QUANTITY per line', async () => {
      const f = await seedActivity(h.app, { skus: Array.from({ length: MAX_CART_LINES + 1 }, () => ({ price_fen: 100, stock: 500 })) });
      const buyer = 90_001;
      for (const id of f.activitySkuIds.slice(0, MAX_CART_LINES)) {
        const r = await h.http.inject({ method: 'POST', url: '/cart/lines', headers: as(buyer), payload: { activitySkuId: id, quantity: 1 } });
        expect(r.statusCode).toBe(200);
      }
      const over = await h.http.inject({ method: 'POST', url: '/cart/lines', headers: as(buyer), payload: { activitySkuId: f.activitySkuIds[MAX_CART_LINES], quantity: 1 } });
      expect([over.statusCode, over.json().code]).toEqual([422, 'cart_full']);

      const first = f.activitySkuIds[0]!;
      const atLimit = await h.http.inject({ method: 'PATCH', url: `/cart/lines/${first}`, headers: as(buyer), payload: { quantity: MAX_LINE_QUANTITY } });
      expect(atLimit.statusCode).toBe(200);
      const pastLimit = await h.http.inject({ method: 'POST', url: '/cart/lines', headers: as(buyer), payload: { activitySkuId: first, quantity: 1 } });
      expect([pastLimit.statusCode, pastLimit.json().code]).toEqual([422, 'line_quantity_exceeded']);
      const pastSchema = await h.http.inject({ method: 'PATCH', url: `/cart/lines/${first}`, headers: as(buyer), payload: { quantity: MAX_LINE_QUANTITY + 1 } });
      expect([pastSchema.statusCode, pastSchema.json().field]).toEqual([400, 'quantity']);

      const unselected = await h.http.inject({ method: 'POST', url: '/cart/selection', headers: as(buyer), payload: { selected: false } });
      expect(unselected.json().lines.every((l: any) => !l.selected)).toBe(true);
      expect(unselected.json().selectedTotalFen).toBe(0);
      const removed = await h.http.inject({ method: 'DELETE', url: `/cart/lines/${first}`, headers: as(buyer) });
      expect(removed.json().lines).toHaveLength(MAX_CART_LINES - 1);
      const again = await h.http.inject({ method: 'DELETE', url: `/cart/lines/${first}`, headers: as(buyer) });
      expect(again.statusCode).toBe(404);
    });

    it('shows lines of sold-out and ended activities as unavailable', async () => {
      const f = await seedActivity(h.app, { skus: [{ price_fen: 100, stock: 1 }, { price_fen: 200, stock: 5 }] });
      const buyer = 90_002;
      for (const id of f.activitySkuIds) await h.http.inject({ method: 'POST', url: '/cart/lines', headers: as(buyer), payload: { activitySkuId: id, quantity: 1 } });
      expect((await asBuyer(h, 90_003).checkout({ leaderId: f.leaderId, items: [{ activitySkuId: f.activitySkuIds[0]!, quantity: 1 }] })).status).toBe(201);
      const cart = (await h.http.inject({ method: 'GET', url: '/cart', headers: as(buyer) })).json();
      expect(cart.lines.map((l: any) => l.availability)).toEqual(['sold_out', 'available']);
      h.clock.advance(25 * 3600_000);
      const later = (await h.http.inject({ method: 'GET', url: '/cart', headers: as(buyer) })).json();
      expect(later.lines.map((l: any) => l.availability)).toEqual(['activity_closed', 'activity_closed']);
      h.clock.advance(-25 * 3600_000);
    });

    it('an admin creates a merchant, a product and an activity, then edits them; buyers may not', async () => {
      const admin = { authorization: `Bearer ${h.adminToken()}` };
      const merchant = await h.http.inject({ method: 'POST', url: '/admin/merchants', headers: admin, payload: { name: '果园 Orchard' } });
      expect(merchant.statusCode).toBe(201);
      const leader = await h.http.inject({ method: 'POST', url: '/admin/leaders', headers: admin, payload: { name: 'Lu', community: 'Riverside', address: 'Block 3' } });
      const product = await h.http.inject({
        method: 'POST', url: '/admin/products', headers: admin,
        payload: { merchantId: merchant.json().id, title: 'Pears', skus: [{ title: '1kg', listPriceFen: 1800, weightG: 1000 }] },
      });
      expect(product.statusCode).toBe(201);
      const skuId = product.json().skus[0].id;
      const now = h.clock.now();
      const activityBody = {
        title: 'Pear week', startsAt: new Date(now - 60_000).toISOString(), endsAt: new Date(now + 86_400_000).toISOString(),
        orderCutoffAt: new Date(now + 43_200_000).toISOString(), pickupDate: '2026-12-02',
        skus: [{ skuId, priceFen: 1290, stock: 40, purchaseLimit: 2 }],
      };
      const forbidden = await h.http.inject({ method: 'POST', url: '/admin/activities', headers: as(1), payload: activityBody });
      expect([forbidden.statusCode, forbidden.json().code]).toEqual([403, 'forbidden']);
      const badWindow = await h.http.inject({ method: 'POST', url: '/admin/activities', headers: admin, payload: { ...activityBody, orderCutoffAt: new Date(now + 2 * 86_400_000).toISOString() } });
      expect([badWindow.statusCode, badWindow.json().field]).toEqual([400, 'orderCutoffAt']);
      const otherMode = await h.http.inject({ method: 'POST', url: '/admin/activities', headers: admin, payload: { ...activityBody, inventoryMode: 'on_a_whim' } });
      expect([otherMode.statusCode, otherMode.json().field]).toEqual([400, 'inventoryMode']);

      const created = await h.http.inject({ method: 'POST', url: '/admin/activities', headers: admin, payload: activityBody });
      expect(created.statusCode).toBe(201);
      const activity = created.json();
      expect(activity).toMatchObject({ state: 'open', inventoryMode: 'on_order', skus: [{ priceFen: 1290, available: 40, total: 40, purchaseLimit: 2 }] });
      const activitySkuId = activity.skus[0].activitySkuId;

      const repriced = await h.http.inject({ method: 'PATCH', url: `/admin/activity-skus/${activitySkuId}`, headers: admin, payload: { priceFen: 990, purchaseLimit: null } });
      expect(repriced.json()).toMatchObject({ priceFen: 990, purchaseLimit: null });
      const renamed = await h.http.inject({ method: 'PATCH', url: `/admin/activities/${activity.id}`, headers: admin, payload: { title: 'Pear fortnight' } });
      expect(renamed.json().title).toBe('Pear fortnight');

      const order = await asBuyer(h, 90_010).checkout({ leaderId: leader.json().id, items: [{ activitySkuId, quantity: 3 }] });
      expect(order.status).toBe(201);
      expect(order.body).toMatchObject({ payableFen: 2970, lines: [{ unitPriceFen: 990, title: 'Pears 1kg' }] });
      const listed = (await h.http.inject({ method: 'GET', url: '/activities' })).json();
      const shown = listed.activities.find((a: any) => a.id === activity.id);
      expect(shown.skus[0]).toMatchObject({ available: 37, total: 40 });
    });
  });
}
