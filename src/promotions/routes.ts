import { z } from 'zod';
import { pathId } from '../platform/http/inputs.ts';
import { authorize } from '../platform/http/auth.ts';
import type { RouteModule } from '../platform/http/server.ts';
import { createPromotion, createShippingRule, listPromotions, promotionInput, shippingRuleInput, updatePromotion } from './promotions.ts';
import type { PromotionsDb } from './tables.ts';

export interface PromotionRouteDeps {
  db: PromotionsDb;
  now: () => number;
}

const idParams = z.object({ id: pathId });

export const promotionRoutes: RouteModule<PromotionRouteDeps> = (server, app) => {
  server.get('/admin/promotions', { schema: { summary: 'Promotions, newest first', tags: ['admin'] } }, async (request) => {
    authorize(request, 'admin');
    return { promotions: await listPromotions(app.db, 200) };
  });
  server.post('/admin/promotions', { schema: { summary: 'Create a promotion (满减, 满折, 阶梯, N件M折)', tags: ['admin'], body: promotionInput } }, async (request, reply) => {
    authorize(request, 'admin');
    return reply.status(201).send(await createPromotion(app.db, request.body, app.now()));
  });
  server.put('/admin/promotions/:id', { schema: { summary: 'Replace a promotion', tags: ['admin'], params: idParams, body: promotionInput } }, async (request) => {
    authorize(request, 'admin');
    await updatePromotion(app.db, request.params.id, request.body, app.now());
    return { id: String(request.params.id) };
  });
  server.post('/admin/shipping-rules', { schema: { summary: "Add a merchant's shipping rule", tags: ['admin'], body: shippingRuleInput } }, async (request, reply) => {
    authorize(request, 'admin');
    return reply.status(201).send(await createShippingRule(app.db, request.body, app.now()));
  });
};
