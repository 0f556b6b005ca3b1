import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCouponTemplate } from '../src/coupons/index.ts';
import { availableEngines } from './support/engines.ts';
import { registerBuyers, seedActivity, startHarness, stockLedger, writtenRows, type Harness } from './support/harness.ts';
import { asAdmin, asUnknownBuyer } from './support/client.ts';

const DAY = 86_400_000;

/**
 * A token may name a buyer the platform has no record of (subject 999999), and an admin may type
 * a wrong buyer id: carts, orders, points and coupons for such a buyer are refused with
 * 404 buyer_not_found, and nothing is written.
 */
for (const engine of availableEngines()) {
  describe(`buyers that do not exist on ${engine.name}`, () => {
    let h: Harness;
    beforeAll(async () => {
      h = await startHarness(engine);
    });
    afterAll(async () => h?.close());

    const unknown = 999_999;
    const count = async (table: 'cart_lines' | 'coupons' | 'points_accounts' | 'points_journal') =>
      Number((await h.app.db.selectFrom(table).select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
    const admin = (url: string, payload: object) => asAdmin(h).post(url, payload);

    it('checkout and add-to-cart for a buyer token whose subject is no buyer are 404 buyer_not_found and write nothing', async () => {
      const f = await seedActivity(h.app, { skus: [{ price_fen: 500, stock: 10 }], inventoryMode: 'on_add_to_cart' });
      const sku = f.activitySkuIds[0]!;
      const before = { ...(await writtenRows(h.app)), cart_lines: await count('cart_lines') };
      const placed = await asUnknownBuyer(h, unknown).checkout({ leaderId: f.leaderId, items: [{ activitySkuId: sku, quantity: 1 }] }, { key: 'unknown-buyer-1' });
      expect([placed.status, placed.body.code]).toEqual([404, 'buyer_not_found']);
      const added = await asUnknownBuyer(h, unknown).cart.add(sku, 3);
      expect([added.status, added.body.code]).toEqual([404, 'buyer_not_found']);
      expect({ ...(await writtenRows(h.app)), cart_lines: await count('cart_lines') }).toEqual(before);
      expect(await stockLedger(h.app, sku)).toMatchObject({ available: 10, reserved: 0 });
      // Registered, the same buyer orders.
      await registerBuyers(h.app.db, [unknown], h.clock.now());
      const again = await asUnknownBuyer(h, unknown).checkout({ leaderId: f.leaderId, items: [{ activitySkuId: sku, quantity: 1 }] }, { key: 'unknown-buyer-2' });
      expect(again.status).toBe(201);
    });

    it('an admin granting points or issuing coupons to a buyer that does not exist gets 404 buyer_not_found, and nothing is granted', async () => {
      const known = 94_001;
      await registerBuyers(h.app.db, [known], h.clock.now());
      const before = { coupons: await count('coupons'), accounts: await count('points_accounts'), journal: await count('points_journal') };
      const grant = await admin('/admin/points/grants', { buyerId: 999_998, points: 100, grantId: 'grant-unknown' });
      expect([grant.status, grant.body.code, grant.body.field, grant.body.details]).toEqual([404, 'buyer_not_found', 'buyerId', { buyerIds: [999_998] }]);
      const now = h.clock.now();
      const template = await createCouponTemplate(
        h.app.db,
        { name: '1 off', scope: { kind: 'platform' }, rule: { kind: 'fixed', off_fen: 100, threshold_fen: 0 }, validFrom: new Date(now - DAY).toISOString(), validUntil: new Date(now + DAY).toISOString(), perBuyerLimit: 5 },
        now,
      );
      // One unknown id among known ones: the whole issue is refused, not issued in part.
      const issue = await admin(`/admin/coupon-templates/${template.id}/issue`, { buyerIds: [known, 999_997] });
      expect([issue.status, issue.body.code, issue.body.details]).toEqual([404, 'buyer_not_found', { buyerIds: [999_997] }]);
      expect({ coupons: await count('coupons'), accounts: await count('points_accounts'), journal: await count('points_journal') }).toEqual(before);
      // The known buyer alone is served.
      expect((await admin(`/admin/coupon-templates/${template.id}/issue`, { buyerIds: [known] })).status).toBe(200);
      expect((await admin('/admin/points/grants', { buyerId: known, points: 100, grantId: 'grant-known' })).status).toBe(201);
    });
  });
}
