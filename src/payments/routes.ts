import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { pathId, paramInt } from '../platform/http/inputs.ts';
import type { Metrics } from '../platform/metrics.ts';
import type { Config } from '../platform/config.ts';
import { getOrder } from '../orders/index.ts';
import type { Logger } from 'pino';
import { authorize, subjectId } from '../platform/http/auth.ts';
import { requestLog, withLog } from '../platform/http/observability.ts';
import type { RouteModule } from '../platform/http/server.ts';
import { AppError } from '../platform/errors.ts';
import type { Principal } from '../platform/http/tokens.ts';
import { CHANNELS, PAY_METHODS } from './channels/types.ts';
import type { PaymentCentre, PaymentsPlatform } from './centre.ts';
import { handleNotification } from './notifications.ts';
import { cashierFor, startPayment, type PaymentAttempt, type StartPayment } from './pay.ts';
import { listReconciliations, reconciliationReport } from './reconciliation.ts';
import { refundUnappliedPayment, requestRefund } from './refunds.ts';
import { findPayment, mustShard, paymentsOfOrder, refundsOfOrder, refundsOfPayment, type Payment, type Refund } from './store.ts';

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());
const orderNoParams = z.object({ orderNo: z.string().regex(/^\d{23}$/, 'an order number is 23 digits') });
const checkoutNoParams = z.object({ checkoutNo: z.string().regex(/^\d{23}$/, 'a checkout number is 23 digits') });
const payNoParams = z.object({ payNo: z.string().regex(/^P\d{23}$/, 'a pay number is P and 23 digits') });
const MAX_REQUEST_KEY_LENGTH = 128;

/**
 * Where the cashier sends the buyer back: https (http only in development) to a configured host,
 * never `javascript:`, a data URL or someone else's site (an open redirect with our name on it).
 */
export function checkReturnUrl(value: string, config: Pick<Config, 'returnUrlHosts' | 'allowHttpReturnUrls'>): void {
  const url = URL.canParse(value) ? new URL(value) : undefined;
  const schemeOk = url?.protocol === 'https:' || (url?.protocol === 'http:' && config.allowHttpReturnUrls === true);
  if (!url || !schemeOk || url.username || url.password || !(config.returnUrlHosts ?? []).includes(url.hostname.toLowerCase())) {
    throw new AppError('return_url_not_allowed', { field: 'returnUrl' });
  }
}

export function paymentView(platform: Payment) {
  return {
    payNo: platform.payNo,
    combineNo: platform.combineNo,
    orderNo: platform.orderNo,
    subMerchantId: platform.subMerchantId,
    channel: platform.channel,
    method: platform.method,
    status: platform.status,
    amountFen: platform.amount_fen,
    currency: platform.currency,
    refundedFen: platform.refunded_fen,
    disposition: platform.disposition,
    channelTradeNo: platform.channelTradeNo,
    action: platform.action,
    expiresAt: iso(platform.expires_at_ms),
    createdAt: iso(platform.created_at_ms),
    succeededAt: iso(platform.succeeded_at_ms),
    closedAt: iso(platform.closed_at_ms),
  };
}

/** A payment attempt of a checkout: its single trade, or its combined payment with a sub-payment per order. */
export function attemptView(attempt: PaymentAttempt) {
  const single = attempt.combineNo === null ? attempt.parts[0]! : undefined;
  return {
    payNo: attempt.payNo,
    combineNo: attempt.combineNo,
    checkoutNo: attempt.checkoutNo,
    orderNo: single?.orderNo ?? null,
    channel: attempt.channel,
    method: attempt.method,
    status: attempt.status,
    amountFen: attempt.amount_fen,
    currency: attempt.currency,
    action: attempt.action,
    expiresAt: iso(attempt.expires_at_ms),
    createdAt: iso(attempt.created_at_ms),
    subPayments: attempt.parts.map(paymentView),
  };
}

export function refundView(r: Refund) {
  return {
    refundNo: r.refundNo,
    payNo: r.payNo,
    orderNo: r.orderNo,
    channel: r.channel,
    status: r.status,
    amountFen: r.amount_fen,
    reason: r.reason,
    lineNos: r.lineNos,
    requestedBy: r.requestedBy,
    channelRefundNo: r.channelRefundNo,
    failure: r.failure,
    createdAt: iso(r.created_at_ms),
    succeededAt: iso(r.succeeded_at_ms),
  };
}

/** A buyer sees their own orders' payments; an admin sees any. */
function buyerScope(principal: Principal): number | undefined {
  return principal.role === 'buyer' ? subjectId(principal) : undefined;
}

function requestKey(header: unknown): string {
  if (typeof header !== 'string' || header.length === 0) throw new AppError('missing_idempotency_key', { field: 'Idempotency-Key' });
  if (header.length > MAX_REQUEST_KEY_LENGTH || !/^[\x21-\x7e]+$/.test(header)) {
    throw new AppError('invalid_field', { field: 'Idempotency-Key', message: `Up to ${MAX_REQUEST_KEY_LENGTH} printable ASCII characters.` });
  }
  return header;
}

const refundBody = z.object({ lineNos: z.array(z.number().int().min(1).max(1000)).min(1).max(100).optional() }).strict();

/** The payment centre logging through one request's logger (reqId, and the order number where known). */
/** What the payment routes use of the app: the payment centre and its platform, the return-URL settings and the notification counter. */
export interface PaymentRouteDeps extends PaymentsPlatform {
  payments: PaymentCentre;
  config: Pick<Config, 'returnUrlHosts' | 'allowHttpReturnUrls'>;
  metrics: Pick<Metrics, 'notifications'>;
}

const forRequest = (centre: PaymentCentre, log: Logger): PaymentCentre => ({ ...centre, platform: withLog(centre.platform, log) });

export const paymentRoutes: RouteModule<PaymentRouteDeps> = (server, app) => {
  const centre = app.payments;

  // The cashier's list: every configured channel, its ways of paying, and whether it is offered now (熔断).
  server.get('/payments/channels', { schema: { summary: 'The payment channels the cashier offers now, and why any is out', tags: ['payments'], security: [] } }, async () => ({
    channels: centre.breakers.all(app.now()).map((h) => ({
      channel: h.channel,
      methods: centre.channels.get(h.channel)!.methods,
      available: h.available,
      state: h.state,
      ...(h.reason !== undefined && { reason: h.reason }),
      ...(h.probe_at_ms !== undefined && { probeAt: new Date(h.probe_at_ms).toISOString() }),
    })),
  }));

  server.get(
    '/checkouts/:checkoutNo/cashier',
    { schema: { summary: 'The channels that can pay every order of this checkout now, with their methods, and why any cannot', tags: ['payments'], params: checkoutNoParams } },
    async (request) => {
      const buyerId = subjectId(authorize(request, 'buyer'));
      return { channels: await cashierFor(centre, request.params.checkoutNo, buyerId) };
    },
  );

  const startBody = z
    .object({
      channel: z.enum(CHANNELS),
      method: z.enum(PAY_METHODS),
      payerId: z.string().min(1).max(128).optional(),
      returnUrl: z.url().max(512).optional(),
    })
    .strict();
  for (const [path, summary] of [
    ['/checkouts/:checkoutNo/payments', 'Start paying a checkout with a channel and method: one payment for all its orders (合单支付: a sub-payment per merchant); the same channel and method again returns the open attempt'],
    ['/orders/:orderNo/payments', "Start paying an order's checkout (before payment a checkout moves as one); the same channel and method again returns the open attempt"],
  ] as const) {
    const byCheckout = path.startsWith('/checkouts');
    server.post(
      path,
      { schema: { summary, tags: ['payments'], params: byCheckout ? checkoutNoParams : orderNoParams, body: startBody } },
      async (request, reply) => {
        const buyerId = subjectId(authorize(request, 'buyer'));
        if (request.body.returnUrl !== undefined) checkReturnUrl(request.body.returnUrl, app.config);
        const params = request.params as { checkoutNo?: string; orderNo?: string };
        const target: Pick<StartPayment, 'checkoutNo' | 'orderNo'> = byCheckout ? { checkoutNo: params.checkoutNo! } : { orderNo: params.orderNo! };
        const log = requestLog(request, target);
        const attempt = await startPayment(forRequest(centre, log), { ...target, asBuyer: buyerId, payerIp: request.ip, ...request.body });
        log.info({ payNo: attempt.payNo, channel: attempt.channel, status: attempt.status, parts: attempt.parts.length }, 'payment started');
        return reply.status(201).send(attemptView(attempt));
      },
    );
  }

  server.get('/orders/:orderNo/payments', { schema: { summary: "An order's payment attempts and refunds", tags: ['payments'], params: orderNoParams } }, async (request) => {
    const principal = authorize(request, 'buyer', 'admin');
    const order = await getOrder(app, request.params.orderNo, buyerScope(principal));
    const db = app.shards.forOrderNo(order.orderNo)!;
    return {
      payments: (await paymentsOfOrder(db, order.orderNo)).map(paymentView),
      refunds: (await refundsOfOrder(db, order.orderNo)).map(refundView),
    };
  });

  server.get('/payments/:payNo', { schema: { summary: 'One payment attempt and its refunds', tags: ['payments'], params: payNoParams } }, async (request) => {
    const principal = authorize(request, 'buyer', 'admin');
    const db = mustShard(app, request.params.payNo);
    const payment = await findPayment(db, request.params.payNo);
    const scope = buyerScope(principal);
    if (!payment || (scope !== undefined && payment.buyerId !== scope)) throw new AppError('payment_not_found');
    return { ...paymentView(payment), refunds: (await refundsOfPayment(db, payment.payNo)).map(refundView) };
  });

  for (const [path, role] of [
    ['/orders/:orderNo/refunds', 'buyer'],
    ['/admin/orders/:orderNo/refunds', 'admin'],
  ] as const) {
    server.post(
      path,
      {
        schema: {
          summary:
            role === 'buyer'
              ? "Refund lines of the buyer's paid order (all lines when none are named), until the activity's order cut-off. Requires an Idempotency-Key header."
              : 'Refund lines of any paid order (all lines when none are named). Requires an Idempotency-Key header.',
          tags: ['payments'],
          params: orderNoParams,
          body: refundBody,
        },
      },
      async (request, reply) => {
        const principal = authorize(request, role);
        const refund = await requestRefund(forRequest(centre, requestLog(request, { orderNo: request.params.orderNo })), {
          orderNo: request.params.orderNo,
          lineNos: request.body.lineNos ?? 'all',
          requestKey: requestKey(request.headers['idempotency-key']),
          reason: role === 'buyer' ? 'buyer_request' : 'admin',
          requestedBy: `${principal.role}:${principal.subject}`,
          ...(role === 'buyer' && { asBuyer: subjectId(principal) }),
        });
        return reply.status(201).send(refundView(refund));
      },
    );
  }

  server.post(
    '/admin/payments/:payNo/refunds',
    {
      schema: {
        summary: 'Refund what is left of a payment that did not pay its order (a duplicate, a late or mismatched one) — to try again after its automatic refund failed. Requires an Idempotency-Key header.',
        tags: ['payments'],
        params: payNoParams,
      },
    },
    async (request, reply) => {
      const principal = authorize(request, 'admin');
      const refund = await refundUnappliedPayment(centre, { payNo: request.params.payNo, requestKey: requestKey(request.headers['idempotency-key']), requestedBy: `admin:${principal.subject}` });
      return reply.status(201).send(refundView(refund));
    },
  );

  // Channel notifications: the adapter verifies the raw body, so it is kept as it came.
  void server.register(async (plain) => {
    const child = plain.withTypeProvider<ZodTypeProvider>();
    child.removeAllContentTypeParsers();
    child.addContentTypeParser('*', { parseAs: 'string' }, (_request, body, done) => done(null, body));
    child.post(
      '/payments/notify/:channel',
      { schema: { summary: "A payment channel's signed notification (no bearer token: verified by the channel's signature)", tags: ['payments'], params: z.object({ channel: z.enum(CHANNELS) }), security: [] } },
      async (request, reply) => {
        if (!centre.channels.has(request.params.channel)) throw new AppError('channel_not_configured');
        const headers: Record<string, string | undefined> = {};
        for (const [name, value] of Object.entries(request.headers)) headers[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
        const { answer, outcome } = await handleNotification(forRequest(centre, requestLog(request, {})), request.params.channel, {
          method: request.method,
          url: request.url,
          headers,
          rawBody: typeof request.body === 'string' ? request.body : '',
        });
        app.metrics.notifications.inc({ channel: request.params.channel, outcome });
        return reply.status(answer.status).type(answer.contentType).send(answer.body);
      },
    );
  });

  server.get(
    '/admin/reconciliations',
    {
      schema: {
        summary: 'Reconciliation runs (对账), newest first',
        tags: ['payments'],
        querystring: z.object({ channel: z.enum(CHANNELS).optional(), limit: paramInt(1, 100).default(20) }),
      },
    },
    async (request) => {
      authorize(request, 'admin');
      return { runs: await listReconciliations(app.db, request.query) };
    },
  );

  server.get(
    '/admin/reconciliations/:id',
    { schema: { summary: 'One reconciliation run with every difference and the action taken or proposed', tags: ['payments'], params: z.object({ id: pathId }) } },
    async (request) => {
      authorize(request, 'admin');
      const report = await reconciliationReport(app.db, request.params.id);
      if (!report) throw new AppError('not_found');
      return report;
    },
  );
};
