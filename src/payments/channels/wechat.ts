import { createHash } from 'node:crypto';
import { AppError } from '../../platform/errors.ts';
import type { z } from 'zod';
import type { ChannelAnswer, ChannelTrade, CombinedSubOrder, CreateCombinedRequest, CreateTradeRequest, PayAction, PaymentChannel, PayMethod, SentAt } from './types.ts';
import {
  billAnswerSchema,
  codeUrlSchema,
  errorCode,
  h5UrlSchema,
  prepaySchema,
  read,
  refundSchema,
  refusal,
  toRefund,
  toTrade,
  transactionSchema,
} from './wechat/answers.ts';
import {
  checkSubOrders,
  combinedCloseBody,
  combinedOrderBody,
  combinedSchema,
  ecommerceRefundAccepted,
  ecommerceRefundBody,
  ecommerceRefundQuerySchema,
  MAX_WECHAT_SUB_ORDERS,
  MIN_COMBINED_AGE_BEFORE_CLOSE_MS,
  subMchidOf,
  toSubOrderTrade,
  tradesOfCombined,
} from './wechat/combined.ts';
import { gunzipBill, isGzip, parseTradeBill } from './wechat/bill.ts';
import { unavailable, wechatHttp } from './wechat/http.ts';
import { notificationParser } from './wechat/notification.ts';
import { apiV3KeyBytes, chinaRfc3339, newNonce, platformKeyRing, privateKey, signMessage } from './wechat/protocol.ts';
import type { WechatSettings } from './wechat/settings.ts';

export { MAX_WECHAT_SUB_ORDERS, MIN_COMBINED_AGE_BEFORE_CLOSE_MS } from './wechat/combined.ts';
export { DEFAULT_WECHAT_TIMEOUT_MS, WECHAT_BASE_URL, wechatSettingsFromEnv, type WechatSettings } from './wechat/settings.ts';

/**
 * WeChat Pay API v3 (微信支付 APIv3), direct merchant mode: Native (QR), JSAPI (inside WeChat),
 * H5 (mobile browser) and App payments, with query, close, refunds, notifications and the
 * trade bill; and, as the platform (服务商 / 平台收付通), combined payments (合单支付) over one
 * sub-order per merchant, refunded per sub-order through /v3/ecommerce/refunds.
 */

const METHODS = ['qr', 'h5', 'jsapi', 'app'] as const satisfies readonly PayMethod[];
type WechatMethod = (typeof METHODS)[number];
const TRADE_PATHS: Record<WechatMethod, string> = { qr: 'native', jsapi: 'jsapi', h5: 'h5', app: 'app' };

/** WeChat refuses a `description` over 127 characters and a refund `reason` over 80; we cut first. */
const MAX_DESCRIPTION_CHARS = 127;
const MAX_REFUND_REASON_CHARS = 80;
/**
 * H5 wants the buyer's IP (scene_info.payer_client_ip) and checks it against the device that
 * opens h5_url. The payment centre passes the IP the buyer's request came from; a caller
 * without one (the contract tests) sends this.
 */
const H5_PAYER_CLIENT_IP_PLACEHOLDER = '127.0.0.1';

export function wechatChannel(settings: WechatSettings, now: () => number): PaymentChannel {
  const key = privateKey(settings.merchantPrivateKeyPem);
  const ring = platformKeyRing(settings.platformKeys);
  // A wrong APIv3 key shows at start, not at the first notification.
  apiV3KeyBytes(settings.apiV3Key);
  const http = wechatHttp({
    baseUrl: settings.baseUrl,
    mchId: settings.mchId,
    serialNo: settings.merchantSerialNo,
    key,
    ring,
    timeout_ms: settings.timeout_ms,
    now,
  });
  const mchid = encodeURIComponent(settings.mchId);
  const tradePath = (payNo: string) => `/v3/pay/transactions/out-trade-no/${encodeURIComponent(payNo)}`;
  const combinedPath = (combineNo: string) => `/v3/combine-transactions/out-trade-no/${encodeURIComponent(combineNo)}`;

  async function create(request: CreateTradeRequest): Promise<PayAction> {
    const method = wechatMethod(request.method);
    if (!Number.isSafeInteger(request.amount_fen) || request.amount_fen <= 0) throw new AppError('invalid_field', { field: 'amount_fen' });
    if (method === 'jsapi' && !request.payerId) throw new AppError('invalid_field', { field: 'payerId', message: 'JSAPI payments need the payer openid' });
    // A merchant's trade alone is made in the partner form (sp_mchid + sub_mchid), so its money lands with the merchant.
    const partner = request.subMerchantId !== undefined;
    const body: Record<string, unknown> = {
      ...(partner ? { sp_appid: settings.appId, sp_mchid: settings.mchId, sub_mchid: request.subMerchantId } : { appid: settings.appId, mchid: settings.mchId }),
      description: Array.from(request.subject).slice(0, MAX_DESCRIPTION_CHARS).join(''),
      out_trade_no: request.payNo,
      time_expire: chinaRfc3339(request.expires_at_ms),
      notify_url: request.notifyUrl,
      amount: { total: request.amount_fen, currency: 'CNY' },
    };
    // The openid is the payer's under our appid: sp_openid in the partner form.
    if (method === 'jsapi') body.payer = partner ? { sp_openid: request.payerId } : { openid: request.payerId };
    if (method === 'h5') body.scene_info = { payer_client_ip: request.payerIp ?? H5_PAYER_CLIENT_IP_PLACEHOLDER, h5_info: { type: 'Wap' } };
    // As in combined payments: frozen in the merchant's account until 分账 or 完结.
    if (partner) body.settle_info = { profit_sharing: true };
    const reply = await http.call('POST', `${partner ? '/v3/pay/partner/transactions' : '/v3/pay/transactions'}/${TRADE_PATHS[method]}`, body);
    if (reply.status !== 200) throw refusal(reply);
    return payAction(method, reply.body, request.returnUrl);
  }

  /** The buyer's next step from an order answer, single or combined: the same three shapes. */
  function payAction(method: WechatMethod, answer: unknown, returnUrl: string | undefined): PayAction {
    switch (method) {
      case 'qr':
        return { kind: 'qr_code', codeUrl: read(codeUrlSchema, answer, 'native').code_url };
      case 'h5': {
        const h5Url = read(h5UrlSchema, answer, 'h5').h5_url;
        // WeChat sends the buyer to redirect_url, appended by the merchant, after the payment page.
        const url = returnUrl ? `${h5Url}${h5Url.includes('?') ? '&' : '?'}redirect_url=${encodeURIComponent(returnUrl)}` : h5Url;
        return { kind: 'redirect', url };
      }
      case 'jsapi':
        return { kind: 'sdk_params', params: jsapiParams(read(prepaySchema, answer, 'jsapi').prepay_id) };
      case 'app':
        return { kind: 'sdk_params', params: appParams(read(prepaySchema, answer, 'app').prepay_id) };
    }
  }

  function wechatMethod(method: PayMethod): WechatMethod {
    if (!(METHODS as readonly string[]).includes(method)) {
      throw new AppError('pay_method_not_supported', { details: { channel: 'wechat', method, methods: METHODS } });
    }
    return method as WechatMethod;
  }

  async function createCombined(request: CreateCombinedRequest): Promise<PayAction> {
    const method = wechatMethod(request.method);
    checkSubOrders(request.subOrders);
    if (method === 'jsapi' && !request.payerId) throw new AppError('invalid_field', { field: 'payerId', message: 'JSAPI payments need the payer openid' });
    const body = combinedOrderBody(request, settings, H5_PAYER_CLIENT_IP_PLACEHOLDER);
    const reply = await http.call('POST', `/v3/combine-transactions/${TRADE_PATHS[method]}`, body);
    if (reply.status !== 200) throw refusal(reply);
    return payAction(method, reply.body, request.returnUrl);
  }

  /** The combine query's answer, or undefined when WeChat knows no such combined payment. */
  async function combinedAnswer(combineNo: string): Promise<z.infer<typeof combinedSchema> | undefined> {
    const reply = await http.call('GET', combinedPath(combineNo));
    if (reply.status === 404 && errorCode(reply) === 'ORDER_NOT_EXIST') return undefined;
    if (reply.status !== 200) throw refusal(reply);
    return read(combinedSchema, reply.body, 'combine query');
  }

  async function queryCombined(combineNo: string, subOrders: readonly CombinedSubOrder[]): Promise<ChannelTrade[]> {
    const answer = await combinedAnswer(combineNo);
    if (!answer) return subOrders.map((sub) => ({ payNo: sub.payNo, state: 'not_found' }));
    return tradesOfCombined(answer, combineNo, subOrders, settings.mchId, (reason) => unavailable(`combine query ${reason}`));
  }

  /** A sub-order alone, which WeChat answers only through its combined payment ("不能使用普通支付的查单接口"). */
  async function querySubOrder(payNo: string, combineNo: string): Promise<ChannelTrade> {
    const answer = await combinedAnswer(combineNo);
    if (!answer) return { payNo, state: 'not_found' };
    if (answer.combine_out_trade_no !== combineNo) throw unavailable('combine query answered for another combined payment', { asked: combineNo });
    const sub = answer.sub_orders.find((candidate) => candidate.out_trade_no === payNo);
    if (!sub) return { payNo, state: 'not_found' };
    if (sub.mchid !== settings.mchId) throw unavailable('combine query answered for another merchant');
    return toSubOrderTrade(sub, (reason) => unavailable(reason));
  }

  async function closeCombined(combineNo: string, subOrders: readonly CombinedSubOrder[], sent?: SentAt): Promise<'closed' | 'already_paid' | 'not_found' | 'too_early'> {
    checkSubOrders(subOrders);
    // Not asked at all inside the minute when we know when we made it: WeChat would refuse it.
    if (sent && now() - sent.requested_at_ms < MIN_COMBINED_AGE_BEFORE_CLOSE_MS) return 'too_early';
    const reply = await http.call('POST', `${combinedPath(combineNo)}/close`, combinedCloseBody(subOrders, settings));
    if (reply.status === 204 || reply.status === 200) return 'closed';
    const code = errorCode(reply);
    if (reply.status === 404 && code === 'ORDER_NOT_EXIST') return 'not_found';
    if (code === 'ORDERPAID') return 'already_paid';
    if (reply.status >= 500 || reply.status === 429 || reply.status === 401 || reply.status === 202) throw refusal(reply);
    // As for single trades, the code for each refusal is not certain: the sub-orders' states decide
    // (all of WeChat's, since a list that is not the one it was made with is one refusal to tell).
    const answer = await combinedAnswer(combineNo);
    if (!answer) return 'not_found';
    if (answer.combine_out_trade_no !== combineNo) throw unavailable('combine query answered for another combined payment', { asked: combineNo });
    const trades = answer.sub_orders.map((sub) => toSubOrderTrade(sub, (reason) => unavailable(reason)));
    if (trades.some((trade) => trade.state === 'succeeded')) return 'already_paid';
    if (trades.every((trade) => trade.state === 'closed' || trade.state === 'failed')) return 'closed';
    // Still payable and refused: inside WeChat's first minute (we send exactly the list we were given).
    if (code === 'INVALID_REQUEST') return 'too_early';
    throw refusal(reply);
  }

  /** What WeixinJSBridge getBrandWCPayRequest / wx.requestPayment take; the merchant key signs them. */
  function jsapiParams(prepayId: string): Record<string, string> {
    const timeStamp = String(Math.floor(now() / 1000));
    const nonceStr = newNonce();
    const pkg = `prepay_id=${prepayId}`;
    const paySign = signMessage(`${settings.appId}\n${timeStamp}\n${nonceStr}\n${pkg}\n`, key);
    return { appId: settings.appId, timeStamp, nonceStr, package: pkg, signType: 'RSA', paySign };
  }

  /** What the WeChat OpenSDK's PayReq takes in an app. */
  function appParams(prepayId: string): Record<string, string> {
    const timestamp = String(Math.floor(now() / 1000));
    const noncestr = newNonce();
    const sign = signMessage(`${settings.appId}\n${timestamp}\n${noncestr}\n${prepayId}\n`, key);
    return { appid: settings.appId, partnerid: settings.mchId, prepayid: prepayId, package: 'Sign=WXPay', noncestr, timestamp, sign };
  }

  /** Where a trade is asked for and closed: the direct merchant's path, or the partner path naming the merchant. */
  function tradeUrl(payNo: string, sent: SentAt | undefined, suffix = ''): { path: string; partner: boolean } {
    if (sent?.subMerchantId === undefined) return { path: `${tradePath(payNo)}${suffix}`, partner: false };
    return { path: `/v3/pay/partner/transactions/out-trade-no/${encodeURIComponent(payNo)}${suffix}`, partner: true };
  }

  async function query(payNo: string, sent?: SentAt): Promise<ChannelTrade> {
    if (sent?.combineNo !== undefined) return querySubOrder(payNo, sent.combineNo);
    const { path, partner } = tradeUrl(payNo, sent);
    const search = partner ? `?sp_mchid=${mchid}&sub_mchid=${encodeURIComponent(sent!.subMerchantId!)}` : `?mchid=${mchid}`;
    const reply = await http.call('GET', `${path}${search}`);
    if (reply.status === 404 && errorCode(reply) === 'ORDER_NOT_EXIST') return { payNo, state: 'not_found' };
    if (reply.status !== 200) throw refusal(reply);
    const answer = read(transactionSchema, reply.body, 'query');
    if (partner && (answer.sp_mchid !== settings.mchId || answer.sub_mchid !== sent!.subMerchantId)) throw unavailable('query answered for another merchant', { asked: sent!.subMerchantId });
    const trade = toTrade(answer, (reason) => unavailable(reason));
    if (trade.payNo !== payNo) throw unavailable('query answered for another trade', { asked: payNo, answered: trade.payNo });
    return trade;
  }

  return {
    name: 'wechat',
    methods: METHODS,
    create,

    query,

    maxSubOrders: MAX_WECHAT_SUB_ORDERS,
    createCombined,
    queryCombined,
    closeCombined,

    async close(payNo, sent) {
      if (sent?.combineNo !== undefined) {
        throw new AppError('invalid_field', { field: 'payNo', message: 'a sub-order of a combined payment is closed with the whole (closeCombined)', details: { combineNo: sent.combineNo } });
      }
      const { path, partner } = tradeUrl(payNo, sent, '/close');
      const reply = await http.call('POST', path, partner ? { sp_mchid: settings.mchId, sub_mchid: sent!.subMerchantId } : { mchid: settings.mchId });
      if (reply.status === 204 || reply.status === 200) return 'closed';
      const code = errorCode(reply);
      if (code === 'ORDERPAID') return 'already_paid';
      if (reply.status === 404 && code === 'ORDER_NOT_EXIST') return 'not_found';
      if (reply.status >= 500 || reply.status === 429 || reply.status === 401) throw refusal(reply);
      // Which code WeChat gives for a trade past closing is not certain (ORDER_CLOSED, TRADE_ERROR, …):
      // the trade's own state decides it.
      const trade = await query(payNo, sent);
      if (trade.state === 'succeeded') return 'already_paid';
      if (trade.state === 'closed' || trade.state === 'failed') return 'closed';
      if (trade.state === 'not_found') return 'not_found';
      throw refusal(reply);
    },

    async refund(request) {
      // A sub-order (or a merchant's trade) is refunded as its own trade under its merchant (平台收付通), never by the combine number.
      if (request.combineNo !== undefined || request.subMerchantId !== undefined) {
        const reply = await http.call('POST', '/v3/ecommerce/refunds/apply', ecommerceRefundBody(request, settings));
        if (reply.status !== 200) throw refusal(reply);
        return ecommerceRefundAccepted(reply.body, request);
      }
      const reply = await http.call('POST', '/v3/refund/domestic/refunds', {
        out_trade_no: request.payNo,
        out_refund_no: request.refundNo,
        reason: Array.from(request.reason).slice(0, MAX_REFUND_REASON_CHARS).join('') || undefined,
        notify_url: request.notifyUrl,
        amount: { refund: request.amount_fen, total: request.total_fen, currency: 'CNY' },
      });
      if (reply.status !== 200) throw refusal(reply);
      const refund = read(refundSchema, reply.body, 'refund');
      if (refund.out_refund_no !== request.refundNo) throw unavailable('refund answered for another refund number');
      return toRefund(refund, refund.status, (reason) => unavailable(reason));
    },

    async queryRefund(payNo, refundNo, sent) {
      if (sent?.combineNo !== undefined || sent?.subMerchantId !== undefined) {
        const subMchid = encodeURIComponent(subMchidOf(sent.subMerchantId, settings));
        const reply = await http.call('GET', `/v3/ecommerce/refunds/out-refund-no/${encodeURIComponent(refundNo)}?sub_mchid=${subMchid}`);
        if (reply.status === 404 && errorCode(reply) === 'RESOURCE_NOT_EXISTS') return { payNo, refundNo, state: 'not_found' };
        if (reply.status !== 200) throw refusal(reply);
        const refund = read(ecommerceRefundQuerySchema, reply.body, 'ecommerce refund query');
        if (refund.out_trade_no !== payNo || refund.out_refund_no !== refundNo) return { payNo, refundNo, state: 'not_found' };
        return toRefund(refund, refund.status, (reason) => unavailable(reason));
      }
      const reply = await http.call('GET', `/v3/refund/domestic/refunds/${encodeURIComponent(refundNo)}`);
      if (reply.status === 404 && errorCode(reply) === 'RESOURCE_NOT_EXISTS') return { payNo, refundNo, state: 'not_found' };
      if (reply.status !== 200) throw refusal(reply);
      const refund = read(refundSchema, reply.body, 'refund query');
      // Refund numbers are unique per merchant, not per trade: one of another trade is not this refund.
      if (refund.out_trade_no !== payNo) return { payNo, refundNo, state: 'not_found' };
      return toRefund(refund, refund.status, (reason) => unavailable(reason));
    },

    parseNotification: notificationParser(settings, ring, now),

    answer(outcome): ChannelAnswer {
      // 200/204 without a body stops WeChat's retries; any 4xx/5xx keeps them coming. A notification
      // that fails verification is a 401 SIGN_ERROR (not our failure); one we could not handle a 500.
      if (outcome === 'accepted') return { status: 204, contentType: 'application/json', body: '' };
      if (outcome === 'forged') return { status: 401, contentType: 'application/json', body: JSON.stringify({ code: 'SIGN_ERROR', message: '签名错误' }) };
      return { status: 500, contentType: 'application/json', body: JSON.stringify({ code: 'FAIL', message: '失败' }) };
    },

    async downloadBill(date) {
      if (!/^\d{4}-\d{2}-\d{2}$/.test(date)) throw new AppError('invalid_field', { field: 'date', message: 'the bill date is YYYY-MM-DD' });
      const reply = await http.call('GET', `/v3/bill/tradebill?bill_date=${date}&bill_type=ALL&tar_type=GZIP`);
      // No successful trade that day: WeChat makes no file; the day's bill is empty, not missing.
      if (reply.status === 400 && errorCode(reply) === 'NO_STATEMENT_EXIST') return new Uint8Array();
      if (reply.status === 400 && errorCode(reply) === 'STATEMENT_CREATING') throw unavailable('the bill is still being made', { date });
      if (reply.status !== 200) throw refusal(reply);
      const answer = read(billAnswerSchema, reply.body, 'tradebill');
      if (answer.hash_type !== 'SHA1') throw unavailable(`unknown bill hash ${answer.hash_type}`);
      const downloaded = await http.download(answer.download_url);
      const file = isGzip(downloaded) ? gunzipBill(downloaded) : downloaded;
      // hash_value covers the bill itself, not the gzip around it (as far as WeChat's documentation says).
      const sha1 = createHash('sha1').update(file).digest('hex');
      if (sha1 !== answer.hash_value.toLowerCase()) throw unavailable('the bill does not match its hash', { date });
      return file;
    },

    parseBill: parseTradeBill,
  };
}
