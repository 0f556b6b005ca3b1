import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import { paramInt } from '../platform/http/inputs.ts';
import { cartLines, MAX_LINE_QUANTITY } from '../cart/index.ts';
import { loadSellableSkus, openness } from '../catalog/index.ts';
import type { PricedCart } from '../pricing/index.ts';
import { priceForBuyer } from './pricing-step.ts';
import { claimPriceProtection, PRICE_PROTECTION_DAYS } from './price-protection.ts';
import { MAX_COUPONS_PER_ORDER } from '../coupons/index.ts';
import { authorize, subjectId } from '../platform/http/auth.ts';
import { requestLog, withLog } from '../platform/http/observability.ts';
import type { RouteModule } from '../platform/http/server.ts';
import { AppError } from '../platform/errors.ts';
import { CHECKOUT_RATE_LIMIT, CHECKOUT_RATE_WINDOW_MS } from './buyer-limits.ts';
import { checkout, MAX_CHECKOUT_LINES, MAX_REMARK_LENGTH } from './checkout.ts';
import { MAX_IDEMPOTENCY_KEY_LENGTH } from './idempotency.ts';
import { cancelOrder, getOrder } from './lifecycle.ts';
import { listBuyerOrders, MAX_ORDERS_PAGE } from './store.ts';
import { orderView } from './view.ts';
import type { Config } from '../platform/config.ts';
import type { OrdersPlatform } from './platform.ts';

/** What the order routes use of the app: the platform orders run on, and the settings checkout answers with. */
export interface OrderRouteDeps extends OrdersPlatform {
  config: Pick<Config, 'checkoutRateLimit' | 'checkoutRateWindow_ms'>;
}

const id = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);

/** The client names what and how many; it never sends a price. Unknown fields are refused. */
export const checkoutBody = z
  .object({
    leaderId: id,
    items: z
      .array(z.object({ activitySkuId: id, quantity: z.number().int().min(1).max(MAX_LINE_QUANTITY) }).strict())
      .min(1)
      .max(MAX_CHECKOUT_LINES),
    remark: z.string().max(MAX_REMARK_LENGTH).optional(),
    couponIds: z.array(id).max(MAX_COUPONS_PER_ORDER).optional(),
    points: z.number().int().min(0).max(1_000_000_000).optional(),
    fulfilment: z.enum(['pickup', 'delivery']).optional(),
    region: z.string().min(1).max(50).optional(),
  })
  .strict();

/**
 * Checkouts are limited per buyer (by the token's subject; per address without a token):
 * CHECKOUT_RATE_LIMIT per CHECKOUT_RATE_WINDOW_MS, then 429 checkout_rate_limited.
 */
function checkoutRateLimit(config: { checkoutRateLimit?: number | undefined; checkoutRateWindow_ms?: number | undefined }) {
  return {
    max: config.checkoutRateLimit ?? CHECKOUT_RATE_LIMIT,
    timeWindow: config.checkoutRateWindow_ms ?? CHECKOUT_RATE_WINDOW_MS,
    keyGenerator: (request: FastifyRequest) => (request.principal?.role === 'buyer' ? `checkout:buyer:${request.principal.subject}` : `checkout:ip:${request.ip}`),
    errorResponseBuilder: (_request: FastifyRequest, context: { ttl: number }) =>
      new AppError('checkout_rate_limited', { details: { retryAfterSeconds: Math.max(1, Math.ceil(context.ttl / 1000)) } }),
  };
}

const orderNoParams = z.object({ orderNo: z.string().regex(/^\d{23}$/, 'an order number is 23 digits') });

export const orderRoutes: RouteModule<OrderRouteDeps> = (server, app) => {
  server.post(
    '/orders',
    {
      schema: {
        summary: 'Check out (下单). Requires an Idempotency-Key header, unique per submission.',
        tags: ['orders'],
        body: checkoutBody,
      },
      config: { rateLimit: checkoutRateLimit(app.config) },
    },
    async (request, reply) => {
      const buyerId = subjectId(authorize(request, 'buyer'));
      const key = request.headers['idempotency-key'];
      if (typeof key !== 'string' || key.length === 0) throw new AppError('missing_idempotency_key', { field: 'Idempotency-Key' });
      if (key.length > MAX_IDEMPOTENCY_KEY_LENGTH || !/^[\x21-\x7e]+$/.test(key)) {
        throw new AppError('invalid_field', { field: 'Idempotency-Key', message: `Up to ${MAX_IDEMPOTENCY_KEY_LENGTH} printable ASCII characters.` });
      }
      const result = await checkout(withLog(app, requestLog(request, { buyerId })), buyerId, key, request.body);
      // One line per answer, carrying the request id and the order number (also on replays).
      const answer = result.body as { orderNo?: string; code?: string };
      request.log.info({ buyerId, orderNo: answer.orderNo, status: result.status, code: answer.code }, 'checkout answered');
      return reply.status(result.status).send(result.body);
    },
  );

  server.post(
    '/cart/preview',
    {
      schema: {
        summary: 'Price the selected, available cart lines as checkout would: discounts per line, shipping, points, and why each promotion or coupon did or did not apply',
        tags: ['cart'],
        body: checkoutBody.pick({ couponIds: true, points: true, fulfilment: true, region: true }),
      },
    },
    async (request) => {
      const buyerId = subjectId(authorize(request, 'buyer'));
      const lines = (await cartLines(app.db, buyerId)).filter((l) => l.selected);
      const skus = await loadSellableSkus(app.db, lines.map((l) => l.activitySkuId));
      const priceable = lines.flatMap((l) => {
        const sku = skus.get(l.activitySkuId);
        return sku && openness(sku.activity, app.now()) === 'open' ? [{ sku, quantity: l.quantity }] : [];
      });
      if (priceable.length === 0) {
        return { currency: 'CNY', lines: [], merchants: [], itemsTotalFen: 0, discountTotalFen: 0, shippingFen: 0, payableFen: 0, applied: [], notApplied: [], points: { used: 0, discount_fen: 0 } };
      }
      const { priced } = await priceForBuyer(app, buyerId, priceable, request.body, undefined);
      return pricedView(priced);
    },
  );

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
    { schema: { summary: 'Cancel an unpaid order', tags: ['orders'], params: orderNoParams } },
    async (request) => {
      const buyerId = subjectId(authorize(request, 'buyer'));
      const log = requestLog(request, { orderNo: request.params.orderNo });
      return orderView(await cancelOrder(withLog(app, log), request.params.orderNo, 'buyer_cancelled', buyerId));
    },
  );
};

/** A priced cart as the phone shows it. */
function pricedView(c: PricedCart) {
  return {
    currency: c.currency,
    lines: c.lines.map((l) => ({
      activitySkuId: l.activitySkuId,
      merchantId: l.merchantId,
      quantity: l.quantity,
      segments: l.segments.map((s) => ({ quantity: s.quantity, unitPriceFen: s.unitPrice_fen, basis: s.basis })),
      subtotalFen: l.subtotal_fen,
      discounts: l.discounts.map((d) => ({ source: d.source, id: d.id, amountFen: d.amount_fen })),
      discountFen: l.discount_fen,
      shippingFen: l.shipping_fen,
      payableFen: l.payable_fen,
    })),
    merchants: c.merchants.map((m) => ({ merchantId: m.merchantId, subtotalFen: m.subtotal_fen, discountFen: m.discount_fen, shippingFen: m.shipping_fen, payableFen: m.payable_fen })),
    itemsTotalFen: c.itemsTotal_fen,
    discountTotalFen: c.discountTotal_fen,
    shippingFen: c.shipping_fen,
    payableFen: c.payable_fen,
    applied: c.applied.map((d) => ({ source: d.source, id: d.id, amountFen: d.amount_fen })),
    notApplied: c.notApplied,
    points: c.points,
  };
}
