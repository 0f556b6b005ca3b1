import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import { cartLines, MAX_LINE_QUANTITY } from '../cart/index.ts';
import { loadSellableSkus, openness } from '../catalog/index.ts';
import { MAX_COUPONS_PER_ORDER } from '../coupons/index.ts';
import { CHECKOUT_RATE_LIMIT, CHECKOUT_RATE_WINDOW_MS, MAX_IDEMPOTENCY_KEY_LENGTH, ORDERS_API_TAG, type OrdersPlatform } from '../orders/index.ts';
import type { Config } from '../platform/config.ts';
import type { PricedCart } from '../pricing/index.ts';
import { authorize, subjectId } from '../platform/http/auth.ts';
import { requestLog, withLog } from '../platform/http/observability.ts';
import type { RouteModule } from '../platform/http/server.ts';
import { AppError } from '../platform/errors.ts';
import { checkout } from './checkout.ts';
import { priceForBuyer } from './pricing-step.ts';
import { MAX_CHECKOUT_LINES, MAX_REMARK_LENGTH } from './validation.ts';

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
    handover: z.enum(['pickup', 'delivery']).optional(),
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

/** What the checkout routes use of the app: the platform orders run on, and the settings checkout answers with. */
export interface CheckoutRouteDeps extends OrdersPlatform {
  config: Pick<Config, 'checkoutRateLimit' | 'checkoutRateWindow_ms'>;
}

export const checkoutRoutes: RouteModule<CheckoutRouteDeps> = (server, app) => {
  server.post(
    '/orders',
    {
      schema: {
        summary:
          'Check out (下单): one checkout, with one order per merchant (拆单), paid once. Requires an Idempotency-Key header, unique per submission; a replay answers with the same checkout.',
        tags: [ORDERS_API_TAG],
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
      // One line per answer, carrying the request id and the checkout number (also on replays).
      const answer = result.body as { checkoutNo?: string; code?: string };
      request.log.info({ buyerId, checkoutNo: answer.checkoutNo, status: result.status, code: answer.code }, 'checkout answered');
      return reply.status(result.status).send(result.body);
    },
  );

  server.post(
    '/cart/preview',
    {
      schema: {
        summary: 'Price the selected, available cart lines as checkout would: discounts per line, shipping, points, and why each promotion or coupon did or did not apply',
        tags: ['cart'],
        body: checkoutBody.pick({ couponIds: true, points: true, handover: true, region: true }),
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
        return { currency: 'CNY', lines: [], merchants: [], itemsTotalFen: 0, discountTotalFen: 0, platformFundedFen: 0, merchantFundedFen: 0, shippingFen: 0, payableFen: 0, applied: [], notApplied: [], points: { used: 0, discount_fen: 0 } };
      }
      const { priced } = await priceForBuyer(app, buyerId, priceable, request.body, undefined);
      return pricedView(priced);
    },
  );
};

/** A priced cart as the phone shows it. */
function pricedView(cart: PricedCart) {
  return {
    currency: cart.currency,
    lines: cart.lines.map((l) => ({
      activitySkuId: l.activitySkuId,
      merchantId: l.merchantId,
      quantity: l.quantity,
      segments: l.segments.map((s) => ({ quantity: s.quantity, unitPriceFen: s.unitPrice_fen, basis: s.basis })),
      subtotalFen: l.subtotal_fen,
      discounts: l.discounts.map((d) => ({ source: d.source, id: d.id, funder: d.funder, amountFen: d.amount_fen })),
      discountFen: l.discount_fen,
      platformFundedFen: l.platformFunded_fen,
      merchantFundedFen: l.merchantFunded_fen,
      shippingFen: l.shipping_fen,
      payableFen: l.payable_fen,
    })),
    merchants: cart.merchants.map((m) => ({ merchantId: m.merchantId, subtotalFen: m.subtotal_fen, discountFen: m.discount_fen, platformFundedFen: m.platformFunded_fen, merchantFundedFen: m.merchantFunded_fen, shippingFen: m.shipping_fen, payableFen: m.payable_fen })),
    itemsTotalFen: cart.itemsTotal_fen,
    discountTotalFen: cart.discountTotal_fen,
    platformFundedFen: cart.platformFunded_fen,
    merchantFundedFen: cart.merchantFunded_fen,
    shippingFen: cart.shipping_fen,
    payableFen: cart.payable_fen,
    applied: cart.applied.map((d) => ({ source: d.source, id: d.id, funder: d.funder, amountFen: d.amount_fen })),
    notApplied: cart.notApplied,
    points: cart.points,
  };
}
