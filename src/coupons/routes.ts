import { z } from 'zod';
import { pathId } from '../platform/http/inputs.ts';
import { assertBuyersExist } from '../buyers/index.ts';
import { authorize, subjectId } from '../platform/http/auth.ts';
import type { RouteModule } from '../platform/http/server.ts';
import { buyerCoupons, couponTemplateInput, createCouponTemplate, issueCoupons, listCouponTemplates, MAX_BUYERS_PER_ISSUE } from './coupons.ts';
import type { Kysely } from 'kysely';
import type { BuyersTables } from '../buyers/index.ts';
import type { OutboxTables } from '../events/index.ts';
import type { JobsTables } from '../jobs/index.ts';
import type { CouponsTables } from './tables.ts';

/** What the coupon routes use of the app: coupons, and the buyers they are issued to. */
export interface CouponRouteDeps {
  db: Kysely<CouponsTables & BuyersTables & OutboxTables & JobsTables>;
  now: () => number;
}

const id = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);
const idParams = z.object({ id: pathId });

export const couponRoutes: RouteModule<CouponRouteDeps> = (server, app) => {
  server.get('/admin/coupon-templates', { schema: { summary: 'Coupon templates, newest first, with how many were issued', tags: ['admin'] } }, async (request) => {
    authorize(request, 'admin');
    return { templates: await listCouponTemplates(app.db, 200) };
  });
  server.post('/admin/coupon-templates', { schema: { summary: 'Create a coupon template', tags: ['admin'], body: couponTemplateInput } }, async (request, reply) => {
    authorize(request, 'admin');
    return reply.status(201).send(await createCouponTemplate(app.db, request.body, app.now()));
  });
  server.post(
    '/admin/coupon-templates/:id/issue',
    { schema: { summary: 'Issue a coupon of the template to each buyer, within its limits', tags: ['admin'], params: idParams, body: z.object({ buyerIds: z.array(id).min(1).max(MAX_BUYERS_PER_ISSUE) }).strict() } },
    async (request) => {
      authorize(request, 'admin');
      await assertBuyersExist(app.db, request.body.buyerIds, 'buyerIds');
      return issueCoupons(app.db, request.params.id, request.body.buyerIds, app.now());
    },
  );
  server.get('/coupons', { schema: { summary: "The buyer's coupons", tags: ['coupons'] } }, async (request) => {
    const buyerId = subjectId(authorize(request, 'buyer'));
    const coupons = await buyerCoupons(app.db, buyerId, app.now());
    return {
      coupons: coupons.map((buyerCoupon) => ({
        couponId: buyerCoupon.couponId,
        name: buyerCoupon.name,
        state: buyerCoupon.expired && buyerCoupon.state === 'available' ? 'expired' : buyerCoupon.state,
        orderNo: buyerCoupon.orderNo,
        rule: buyerCoupon.coupon.rule,
        scope: buyerCoupon.coupon.scope,
        validFrom: new Date(buyerCoupon.coupon.valid_from_ms).toISOString(),
        validUntil: new Date(buyerCoupon.coupon.valid_until_ms).toISOString(),
      })),
    };
  });
};
