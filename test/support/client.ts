import type { ChannelName } from '../../src/payments/index.ts';
import { newKey, type Harness } from './harness.ts';

/**
 * The shared test client: what a buyer or an admin sends, built in one place, so a flow test
 * reads as the journey (`asBuyer(h, 1).checkout(…)`, `.pay(…)`, `.refund(…)`) and not as
 * headers. Every call answers the raw reply, its status and parsed JSON body, so the tests
 * assert exactly what they asserted on the responses they built by hand. A token is signed afresh for each request, at the test clock's
 * now, as the hand-built requests did.
 */
export interface Reply {
  status: number;
  /** The JSON body; undefined when the answer has none (or is not JSON). */
  body: any;
  /**
   * The answer's headers. Not enumerable, so a reply still equals `{ status, body }` (tests
   * compare a repeated checkout's whole reply with the first one's).
   */
  readonly headers: Record<string, string | string[] | number | undefined>;
}

type Method = 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';

export interface RequestOptions {
  payload?: unknown;
  /** Extra headers (idempotency-key, x-request-id, content-type…). */
  headers?: Record<string, string>;
}

async function send(h: Harness, token: (() => string) | undefined, method: Method, url: string, options: RequestOptions = {}): Promise<Reply> {
  const response = await h.http.inject({
    method,
    url,
    headers: { ...(token && { authorization: `Bearer ${token()}` }), ...options.headers },
    ...(options.payload !== undefined && { payload: options.payload as object }),
  });
  let body: any;
  try {
    body = response.body === '' ? undefined : response.json();
  } catch {
    body = undefined;
  }
  const reply = { status: response.statusCode, body };
  Object.defineProperty(reply, 'headers', { value: response.headers, enumerable: false });
  return reply as Reply;
}

/** The Idempotency-Key header: a fresh key unless one is given; null sends none. */
function keyHeader(key: string | null | undefined): Record<string, string> {
  if (key === null) return {};
  return { 'idempotency-key': key ?? newKey() };
}

/** Requests with a token: the verbs, for calls the named ones below do not cover. */
export interface Client {
  request(method: Method, url: string, options?: RequestOptions): Promise<Reply>;
  get(url: string): Promise<Reply>;
  post(url: string, payload?: unknown, headers?: Record<string, string>): Promise<Reply>;
  patch(url: string, payload: unknown): Promise<Reply>;
  put(url: string, payload: unknown): Promise<Reply>;
  delete(url: string): Promise<Reply>;
}

function clientWith(h: Harness, token: (() => string) | undefined): Client {
  return {
    request: (method, url, options) => send(h, token, method, url, options),
    get: (url) => send(h, token, 'GET', url),
    post: (url, payload, headers) => send(h, token, 'POST', url, { payload, headers }),
    patch: (url, payload) => send(h, token, 'PATCH', url, { payload }),
    put: (url, payload) => send(h, token, 'PUT', url, { payload }),
    delete: (url) => send(h, token, 'DELETE', url),
  };
}


export interface CheckoutOptions {
  /** The Idempotency-Key: a fresh one unless given; null sends none. */
  key?: string | null;
  headers?: Record<string, string>;
}

/** The first method a channel offers: what a test pays with when the method is not its point. */
export function firstMethodOf(h: Harness, channel: ChannelName): string {
  return h.app.payments.channels.get(channel)!.methods[0]!;
}

/** The buyer presses Pay at the sandbox cashier of a started payment; answers the cashier's status. */
export async function payAtCashier(h: Harness, channel: ChannelName | string, payNo: string): Promise<number> {
  const response = await fetch(`${h.sandbox!.url}/sandbox/cashier/${channel}/${payNo}/pay`, { method: 'POST' });
  return response.status;
}

/** A buyer, registered before the first request (as the harness registers every buyer a test names). */
export function asBuyer(h: Harness, buyerId: number) {
  return buyerCalls(h, () => h.buyerToken(buyerId));
}

/** A buyer token whose subject the platform has no record of. */
export function asUnknownBuyer(h: Harness, buyerId: number) {
  return buyerCalls(h, () => h.unknownBuyerToken(buyerId));
}

/** The buyer's calls carrying the given token as it is (a forged, expired, revoked or other principal's token). */
export function withToken(h: Harness, token: string) {
  return buyerCalls(h, () => token);
}

/** The buyer's calls with no token at all. */
export function anonymous(h: Harness) {
  return buyerCalls(h, undefined);
}

function buyerCalls(h: Harness, token: (() => string) | undefined) {
  const client = clientWith(h, token);
  return {
    ...client,
    checkout: (body: unknown, options: CheckoutOptions = {}) =>
      client.request('POST', '/orders', { payload: body, headers: { ...keyHeader(options.key), ...options.headers } }),
    orders: (query = '') => client.get(`/orders${query}`),
    order: (orderNo: string) => client.get(`/orders/${orderNo}`),
    cancel: (orderNo: string) => client.post(`/orders/${orderNo}/cancel`),
    /** Starts (or shows again) a payment of the order on a channel; the method is the channel's first unless given. */
    startPayment: (orderNo: string, channel: ChannelName, method: string = firstMethodOf(h, channel), extra: Record<string, unknown> = {}) =>
      client.post(`/orders/${orderNo}/payments`, { channel, method, ...extra }),
    /** Starts (or shows again) the payment of a whole checkout: one attempt, a sub-payment per order with something to pay. */
    startCheckoutPayment: (checkoutNo: string, channel: ChannelName, method: string = firstMethodOf(h, channel)) => client.post(`/checkouts/${checkoutNo}/payments`, { channel, method }),
    checkouts: (query = '') => client.get(`/checkouts${query}`),
    checkoutOf: (checkoutNo: string) => client.get(`/checkouts/${checkoutNo}`),
    cancelCheckout: (checkoutNo: string) => client.post(`/checkouts/${checkoutNo}/cancel`),
    /** Starts a payment and pays it at the sandbox cashier: the started reply and the cashier's status. */
    pay: async (orderNo: string, channel: ChannelName, method: string = firstMethodOf(h, channel)) => {
      const started = await client.post(`/orders/${orderNo}/payments`, { channel, method });
      const cashier = started.status === 201 ? await payAtCashier(h, channel, started.body.payNo) : undefined;
      return { started, cashier };
    },
    /** A refund of the given lines (of the whole order without them). */
    refund: (orderNo: string, lineNos?: number[], options: { key?: string | null } = {}) =>
      client.post(`/orders/${orderNo}/refunds`, lineNos ? { lineNos } : {}, keyHeader(options.key)),
    claimPriceProtection: (orderNo: string, lineNo: number | string) => client.post(`/orders/${orderNo}/lines/${lineNo}/price-protection`),
    points: (query = '') => client.get(`/points${query}`),
    coupons: () => client.get('/coupons'),
    cart: {
      get: () => client.get('/cart'),
      add: (activitySkuId: number | undefined, quantity: unknown) => client.post('/cart/lines', { activitySkuId, quantity }),
      setQuantity: (activitySkuId: number | string, quantity: unknown) => client.patch(`/cart/lines/${activitySkuId}`, { quantity }),
      remove: (activitySkuId: number | string) => client.delete(`/cart/lines/${activitySkuId}`),
      select: (body: unknown) => client.post('/cart/selection', body),
      preview: (body: unknown = {}) => client.post('/cart/preview', body),
    },
  };
}

export type BuyerClient = ReturnType<typeof buyerCalls>;

export function asAdmin(h: Harness) {
  const client = clientWith(h, () => h.adminToken());
  return {
    ...client,
    createMerchant: (body: unknown) => client.post('/admin/merchants', body),
    merchants: () => client.get('/admin/merchants'),
    updateMerchant: (merchantId: number | string, body: unknown) => client.patch(`/admin/merchants/${merchantId}`, body),
    channelAccounts: (merchantId: number | string) => client.get(`/admin/merchants/${merchantId}/channel-accounts`),
    /** Sets or replaces the merchant's sub-merchant id at a channel. */
    setChannelAccount: (merchantId: number | string, channel: string, subMerchantId: unknown) =>
      client.put(`/admin/merchants/${merchantId}/channel-accounts/${channel}`, { subMerchantId }),
    removeChannelAccount: (merchantId: number | string, channel: string) => client.delete(`/admin/merchants/${merchantId}/channel-accounts/${channel}`),
    createLeader: (body: unknown) => client.post('/admin/leaders', body),
    createProduct: (body: unknown) => client.post('/admin/products', body),
    createActivity: (body: unknown) => client.post('/admin/activities', body),
    updateActivity: (activityId: number | string, body: unknown) => client.patch(`/admin/activities/${activityId}`, body),
    updateActivitySku: (activitySkuId: number | string, body: unknown) => client.patch(`/admin/activity-skus/${activitySkuId}`, body),
    adjustStock: (activitySkuId: number, body: { delta: number; reason: string; requestId: string }) =>
      client.post(`/admin/activity-skus/${activitySkuId}/stock-adjustments`, body),
    stockAdjustments: (activitySkuId: number, query = '') => client.get(`/admin/activity-skus/${activitySkuId}/stock-adjustments${query}`),
    createShippingRule: (body: unknown) => client.post('/admin/shipping-rules', body),
    createPromotion: (body: unknown) => client.post('/admin/promotions', body),
    replacePromotion: (promotionId: number | string, body: unknown) => client.put(`/admin/promotions/${promotionId}`, body),
    createCouponTemplate: (body: unknown) => client.post('/admin/coupon-templates', body),
    /** A refund of the given lines (of the whole order without them), as the platform's decision. */
    refund: (orderNo: string, lineNos?: number[], options: { key?: string | null } = {}) =>
      client.post(`/admin/orders/${orderNo}/refunds`, lineNos ? { lineNos } : {}, keyHeader(options.key)),
    /** Refunds a payment as a whole (a duplicate payment whose automatic refund failed). */
    refundPayment: (payNo: string, options: { key?: string | null } = {}) => client.request('POST', `/admin/payments/${payNo}/refunds`, { headers: keyHeader(options.key) }),
    reconciliations: (query = '') => client.get(`/admin/reconciliations${query}`),
    reconciliation: (runId: number | string) => client.get(`/admin/reconciliations/${runId}`),
    revokeToken: (body: { tokenId: string; reason?: string }) => client.post('/admin/token-revocations', body),
    deadLetters: (query = '') => client.get(`/admin/dead-letters${query}`),
    replayDeadLetter: (deadLetterId: number | string) => client.post(`/admin/dead-letters/${deadLetterId}/replay`),
    repairs: (query = '') => client.get(`/admin/consistency/repairs${query}`),
  };
}

export type AdminClient = ReturnType<typeof asAdmin>;
