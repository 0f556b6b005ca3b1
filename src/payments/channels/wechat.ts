import { createHash } from 'node:crypto';
import { AppError } from '../../platform/errors.ts';
import type { ChannelAnswer, ChannelTrade, CreateTradeRequest, PayAction, PaymentChannel, PayMethod } from './types.ts';
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
import { gunzipBill, isGzip, parseTradeBill } from './wechat/bill.ts';
import { unavailable, wechatHttp } from './wechat/http.ts';
import { notificationParser } from './wechat/notification.ts';
import { apiV3KeyBytes, chinaRfc3339, newNonce, platformKeyRing, privateKey, signMessage } from './wechat/protocol.ts';
import type { WechatSettings } from './wechat/settings.ts';

export { DEFAULT_WECHAT_TIMEOUT_MS, WECHAT_BASE_URL, wechatSettingsFromEnv, type WechatSettings } from './wechat/settings.ts';

/**
 * WeChat Pay API v3 (微信支付 APIv3), direct merchant mode: Native (QR), JSAPI (inside WeChat),
 * H5 (mobile browser) and App payments, with query, close, refunds, notifications and the
 * trade bill.
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

  async function create(request: CreateTradeRequest): Promise<PayAction> {
    if (!(METHODS as readonly string[]).includes(request.method)) {
      throw new AppError('pay_method_not_supported', { details: { channel: 'wechat', method: request.method, methods: METHODS } });
    }
    const method = request.method as WechatMethod;
    if (!Number.isSafeInteger(request.amount_fen) || request.amount_fen <= 0) throw new AppError('invalid_field', { field: 'amount_fen' });
    if (method === 'jsapi' && !request.payerId) throw new AppError('invalid_field', { field: 'payerId', message: 'JSAPI payments need the payer openid' });
    const body: Record<string, unknown> = {
      appid: settings.appId,
      mchid: settings.mchId,
      description: Array.from(request.subject).slice(0, MAX_DESCRIPTION_CHARS).join(''),
      out_trade_no: request.payNo,
      time_expire: chinaRfc3339(request.expires_at_ms),
      notify_url: request.notifyUrl,
      amount: { total: request.amount_fen, currency: 'CNY' },
    };
    if (method === 'jsapi') body.payer = { openid: request.payerId };
    if (method === 'h5') body.scene_info = { payer_client_ip: request.payerIp ?? H5_PAYER_CLIENT_IP_PLACEHOLDER, h5_info: { type: 'Wap' } };
    const reply = await http.call('POST', `/v3/pay/transactions/${TRADE_PATHS[method]}`, body);
    if (reply.status !== 200) throw refusal(reply);
    switch (method) {
      case 'qr':
        return { kind: 'qr_code', codeUrl: read(codeUrlSchema, reply.body, 'native').code_url };
      case 'h5': {
        const h5Url = read(h5UrlSchema, reply.body, 'h5').h5_url;
        // WeChat sends the buyer to redirect_url, appended by the merchant, after the payment page.
        const url = request.returnUrl ? `${h5Url}${h5Url.includes('?') ? '&' : '?'}redirect_url=${encodeURIComponent(request.returnUrl)}` : h5Url;
        return { kind: 'redirect', url };
      }
      case 'jsapi':
        return { kind: 'sdk_params', params: jsapiParams(read(prepaySchema, reply.body, 'jsapi').prepay_id) };
      case 'app':
        return { kind: 'sdk_params', params: appParams(read(prepaySchema, reply.body, 'app').prepay_id) };
    }
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

  async function query(payNo: string): Promise<ChannelTrade> {
    const reply = await http.call('GET', `${tradePath(payNo)}?mchid=${mchid}`);
    if (reply.status === 404 && errorCode(reply) === 'ORDER_NOT_EXIST') return { payNo, state: 'not_found' };
    if (reply.status !== 200) throw refusal(reply);
    const trade = toTrade(read(transactionSchema, reply.body, 'query'), (reason) => unavailable(reason));
    if (trade.payNo !== payNo) throw unavailable('query answered for another trade', { asked: payNo, answered: trade.payNo });
    return trade;
  }

  return {
    name: 'wechat',
    methods: METHODS,
    create,

    query,

    async close(payNo) {
      const reply = await http.call('POST', `${tradePath(payNo)}/close`, { mchid: settings.mchId });
      if (reply.status === 204 || reply.status === 200) return 'closed';
      const code = errorCode(reply);
      if (code === 'ORDERPAID') return 'already_paid';
      if (reply.status === 404 && code === 'ORDER_NOT_EXIST') return 'not_found';
      if (reply.status >= 500 || reply.status === 429 || reply.status === 401) throw refusal(reply);
      // Which code WeChat gives for a trade past closing is not certain (ORDER_CLOSED, TRADE_ERROR, …):
      // the trade's own state decides it.
      const trade = await query(payNo);
      if (trade.state === 'succeeded') return 'already_paid';
      if (trade.state === 'closed' || trade.state === 'failed') return 'closed';
      if (trade.state === 'not_found') return 'not_found';
      throw refusal(reply);
    },

    async refund(request) {
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

    async queryRefund(payNo, refundNo) {
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
