import { z } from 'zod';
import { paramInt } from '../platform/http/inputs.ts';
import { claimPriceProtection, PRICE_PROTECTION_DAYS } from './price-protection.ts';
import { authorize, subjectId } from '../platform/http/auth.ts';
import { requestLog, withLog } from '../platform/http/observability.ts';
import type { RouteModule } from '../platform/http/server.ts';
import { cancelCheckout, cancelOrder, getCheckout, getOrder } from './lifecycle.ts';
import { listBuyerCheckouts, listBuyerOrders, MAX_ORDERS_PAGE } from './store.ts';
import { checkoutView, orderView } from './view.ts';
import type { OrdersPlatform } from './platform.ts';

const orderNoParams = z.object({ orderNo: z.string().regex(/^\d{23}$/, 'an order number is 23 digits') });
const checkoutNoParams = z.object({ checkoutNo: z.string().regex(/^\d{23}$/, 'a checkout number is 23 digits') });

export const orderRoutes: RouteModule<OrdersPlatform> = (server, app) => {
  server.get(
    '/orders',
    {
      schema: {
        summary: "The buyer's orders, newest first; pass `next` as `before` for the following page",
        tags: ['orders'],
        querystring: z.object({
          limit: paramInt(1, MAX_ORDERS_PAGE).default(20),
          before: z.string().regex(/^\d{23}$/, 'the last order number of the previous page').optional(),
        }),
      },
    },
    async (request) => {
      const buyerId = subjectId(authorize(request, 'buyer'));
      const orders = await listBuyerOrders(app.shards.forBuyer(buyerId), buyerId, {
        limit: request.query.limit,
        ...(request.query.before && { beforeOrderNo: request.query.before }),
      });
      const next = orders.length === request.query.limit ? orders[orders.length - 1]!.orderNo : null;
      return { orders: orders.map(orderView), next };
    },
  );

  server.get(
    '/checkouts',
    {
      schema: {
        summary: "The buyer's checkouts, newest first, each with its orders (one per merchant); pass `next` as `before` for the following page",
        tags: ['orders'],
        querystring: z.object({
          limit: paramInt(1, MAX_ORDERS_PAGE).default(20),
          before: z.string().regex(/^\d{23}$/, 'the last checkout number of the previous page').optional(),
        }),
      },
    },
    async (request) => {
      const buyerId = subjectId(authorize(request, 'buyer'));
      const checkouts = await listBuyerCheckouts(app.shards.forBuyer(buyerId), buyerId, {
        limit: request.query.limit,
        ...(request.query.before && { beforeCheckoutNo: request.query.before }),
      });
      const next = checkouts.length === request.query.limit ? checkouts[checkouts.length - 1]!.checkoutNo : null;
      return { checkouts: checkouts.map(checkoutView), next };
    },
  );

  server.get('/checkouts/:checkoutNo', { schema: { summary: 'One checkout, with each merchant’s order', tags: ['orders'], params: checkoutNoParams } }, async (request) => {
    const principal = authorize(request, 'buyer', 'admin');
    return checkoutView(await getCheckout(app, request.params.checkoutNo, principal.role === 'buyer' ? subjectId(principal) : undefined));
  });

  server.post(
    '/checkouts/:checkoutNo/cancel',
    { schema: { summary: 'Cancel an unpaid checkout: every order of it, or none', tags: ['orders'], params: checkoutNoParams } },
    async (request) => {
      const buyerId = subjectId(authorize(request, 'buyer'));
      const log = requestLog(request, { checkoutNo: request.params.checkoutNo });
      return checkoutView(await cancelCheckout(withLog(app, log), request.params.checkoutNo, 'buyer_cancelled', buyerId));
    },
  );

  server.get('/orders/:orderNo', { schema: { summary: 'One order', tags: ['orders'], params: orderNoParams } }, async (request) => {
    const principal = authorize(request, 'buyer', 'admin');
    const order = await getOrder(app, request.params.orderNo, principal.role === 'buyer' ? subjectId(principal) : undefined);
    return orderView(order);
  });

  server.post(
    '/orders/:orderNo/lines/:lineNo/price-protection',
    {
      schema: {
        summary: `Claim price protection (价保): within ${PRICE_PROTECTION_DAYS} days of payment, once per line, the drop in the activity price since`,
        tags: ['orders'],
        params: orderNoParams.extend({ lineNo: paramInt(1, 1000) }),
      },
    },
    async (request, reply) => {
      const buyerId = subjectId(authorize(request, 'buyer'));
      const claim = await claimPriceProtection(app, buyerId, request.params.orderNo, request.params.lineNo);
      return reply.status(201).send({
        orderNo: claim.orderNo,
        lineNo: claim.lineNo,
        paidUnitPriceFen: claim.paidUnitPrice_fen,
        currentUnitPriceFen: claim.currentUnitPrice_fen,
        quantity: claim.quantity,
        amountFen: claim.amount_fen,
      });
    },
  );

  server.post(
    '/orders/:orderNo/cancel',
    { schema: { summary: 'Cancel an unpaid order: before payment a checkout moves as one, so this cancels every order of its checkout', tags: ['orders'], params: orderNoParams } },
    async (request) => {
      const buyerId = subjectId(authorize(request, 'buyer'));
      const log = requestLog(request, { orderNo: request.params.orderNo });
      return orderView(await cancelOrder(withLog(app, log), request.params.orderNo, 'buyer_cancelled', buyerId));
    },
  );
};
