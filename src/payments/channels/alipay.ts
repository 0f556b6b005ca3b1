import type { AlipaySdk } from 'alipay-sdk';
import { AppError } from '../../platform/errors.ts';
import { details, refused, subjectOf, subMerchantFields, SUCCESS, text, type Answer } from './alipay/answers.ts';
import { parseAlipayBill } from './alipay/bill.ts';
import { chinaTime, fenToYuan, parseChinaTime, yuanToFen } from './alipay/format.ts';
import { alipayMerge, COMBINED_METHODS, MAX_MERGE_SUB_ORDERS } from './alipay/merge.ts';
import { parseAlipayNotification } from './alipay/notification.ts';
import type { AlipaySettings } from './alipay/settings.ts';
import type { ChannelRefund, ChannelTrade, CreateTradeRequest, PayAction, PayMethod, PaymentChannel, RefundRequest } from './types.ts';

export { COMBINED_METHODS as ALIPAY_COMBINED_METHODS, MAX_MERGE_SUB_ORDERS } from './alipay/merge.ts';
export { alipaySettingsFromEnv, type AlipaySettings } from './alipay/settings.ts';

/**
 * Alipay (支付宝) through its v2 gateway, using the official alipay-sdk for every signature:
 * requests are signed with the app's key, answers and notifications verified with Alipay's.
 * Amounts cross this file's edge as integer fen; inside they are yuan strings.
 */

const METHODS: readonly PayMethod[] = ['qr', 'page', 'h5', 'app'];
/** The largest bill file read into memory. */
export const MAX_BILL_BYTES = 256 * 1024 * 1024;
/** Answers meaning "not known yet, ask again" rather than a refusal. */
const UNKNOWN_OUTCOME_SUB_CODES = new Set(['ACQ.SYSTEM_ERROR', 'AQC.SYSTEM_ERROR', 'isp.unknow-error', 'aop.ACQ.SYSTEM_ERROR']);
/** Refund answers after which the refund is definitely not made (a new attempt may succeed later). */
const REFUND_FAILED_SUB_CODES = new Set(['ACQ.SELLER_BALANCE_NOT_ENOUGH', 'ACQ.REFUND_CHARGE_ERROR']);
/**
 * The documented answer to closing a trade that is not waiting for payment is
 * ACQ.TRADE_STATUS_ERROR; other codes are seen in the field. Each is followed by a query to
 * learn whether the trade was paid or closed already.
 */
const CLOSE_NOT_WAITING_SUB_CODES = new Set(['ACQ.TRADE_STATUS_ERROR', 'ACQ.TRADE_HAS_SUCCESS', 'ACQ.REASON_ILLEGAL_STATUS', 'ACQ.REASON_TRADE_STATUS_INVALID']);

export function alipayChannel(settings: AlipaySettings, now: () => number): PaymentChannel {
  // The SDK (and its HTTP client) is loaded on first use: a process that never pays by Alipay
  // does not carry its ~25 MB.
  let loaded: Promise<AlipaySdk> | undefined;
  const sdkReady = (): Promise<AlipaySdk> =>
    (loaded ??= import('alipay-sdk').then(
      ({ AlipaySdk }) =>
        new AlipaySdk({
          appId: settings.appId,
          privateKey: settings.appPrivateKeyPem,
          alipayPublicKey: settings.alipayPublicKeyPem,
          gateway: settings.gatewayUrl,
          keyType: 'PKCS8',
          signType: 'RSA2',
          timeout: settings.timeout_ms,
          // Keep Alipay's own snake_case field names, as its documentation writes them.
          camelcase: false,
        }),
    ));

  /**
   * The SDK stamps requests in the server's local time zone; Alipay reads the timestamp as
   * China time, so a server running on UTC would be eight hours off. Our own stamp overrides it.
   */
  const common = () => ({ timestamp: chinaTime(now()) });

  /** One gateway call; the SDK signs it and, with validateSign, checks the answer's signature over its raw text. */
  async function call(method: string, bizContent: Record<string, unknown>, extra: Record<string, string> = {}): Promise<Answer> {
    let answer: Answer;
    try {
      answer = await (await sdkReady()).exec(method, { ...common(), ...extra, bizContent }, { validateSign: true });
    } catch (error) {
      throw new AppError('channel_unavailable', { message: `Alipay ${method} failed: ${(error as Error).message}`.slice(0, 500), details: { method } });
    }
    if (typeof answer?.code !== 'string') throw new AppError('channel_unavailable', { message: `Alipay ${method} answered without a code`, details: { method } });
    if (answer.code === '20000' || UNKNOWN_OUTCOME_SUB_CODES.has(answer.sub_code ?? '')) {
      throw new AppError('channel_unavailable', { message: `Alipay ${method}: outcome unknown (${answer.sub_code ?? answer.code})`, details: details(method, answer) });
    }
    return answer;
  }

  async function query(payNo: string): Promise<ChannelTrade> {
    const answer = await call('alipay.trade.query', { out_trade_no: payNo });
    if (answer.code !== SUCCESS) {
      if (answer.sub_code === 'ACQ.TRADE_NOT_EXIST') return { payNo, state: 'not_found' };
      throw refused('alipay.trade.query', answer);
    }
    const trade: ChannelTrade = { payNo, state: 'pending', channelTradeNo: text(answer, 'trade_no') };
    if (answer.total_amount !== undefined) trade.amount_fen = yuanToFen(String(answer.total_amount), 'total_amount');
    const paidAt = text(answer, 'send_pay_date');
    if (paidAt) trade.paid_at_ms = parseChinaTime(paidAt, 'send_pay_date');
    switch (answer.trade_status) {
      case 'WAIT_BUYER_PAY':
        return trade;
      case 'TRADE_SUCCESS':
        return { ...trade, state: 'succeeded' };
      case 'TRADE_FINISHED':
        return { ...trade, state: 'succeeded', finished: true };
      case 'TRADE_CLOSED':
        // A closed trade that was paid has been refunded in full; one never paid is closed.
        return paidAt ? { ...trade, state: 'succeeded', refunded_fen: trade.amount_fen } : { ...trade, state: 'closed' };
      default:
        throw new AppError('channel_unavailable', { message: `Alipay reported an unknown trade_status ${String(answer.trade_status)}`, details: { payNo } });
    }
  }

  async function close(payNo: string): Promise<'closed' | 'already_paid' | 'not_found'> {
    const answer = await call('alipay.trade.close', { out_trade_no: payNo });
    if (answer.code === SUCCESS) return 'closed';
    if (answer.sub_code === 'ACQ.TRADE_NOT_EXIST') return 'not_found';
    if (!CLOSE_NOT_WAITING_SUB_CODES.has(answer.sub_code ?? '')) throw refused('alipay.trade.close', answer);
    const trade = await query(payNo);
    if (trade.state === 'succeeded') return 'already_paid';
    if (trade.state === 'closed') return 'closed';
    if (trade.state === 'not_found') return 'not_found';
    throw refused('alipay.trade.close', answer);
  }

  async function queryRefund(payNo: string, refundNo: string): Promise<ChannelRefund> {
    const answer = await call('alipay.trade.fastpay.refund.query', { out_trade_no: payNo, out_request_no: refundNo, query_options: ['gmt_refund_pay'] });
    if (answer.code !== SUCCESS) {
      if (answer.sub_code === 'ACQ.TRADE_NOT_EXIST') return { payNo, refundNo, state: 'not_found' };
      throw refused('alipay.trade.fastpay.refund.query', answer);
    }
    if (answer.refund_status === 'REFUND_SUCCESS') {
      const refund: ChannelRefund = { payNo, refundNo, state: 'succeeded', amount_fen: yuanToFen(String(answer.refund_amount), 'refund_amount') };
      const at = text(answer, 'gmt_refund_pay');
      if (at) refund.succeeded_at_ms = parseChinaTime(at, 'gmt_refund_pay');
      return refund;
    }
    // No refund_status: Alipay has not received the refund, or it failed. A refund it knows
    // of (it echoes the request) is still being worked on; one it does not know may be asked for
    // again under the same refundNo.
    if (answer.out_request_no) return { payNo, refundNo, state: 'processing', amount_fen: answer.refund_amount ? yuanToFen(String(answer.refund_amount), 'refund_amount') : undefined };
    return { payNo, refundNo, state: 'not_found' };
  }

  const merge = alipayMerge({ appId: settings.appId, now, sdk: sdkReady, common, call, query, close });

  return {
    name: 'alipay',
    methods: METHODS,
    maxSubOrders: MAX_MERGE_SUB_ORDERS,
    combinedMethods: COMBINED_METHODS,
    createCombined: merge.create,
    queryCombined: merge.query,
    closeCombined: merge.close,

    async create(request: CreateTradeRequest): Promise<PayAction> {
      if (!METHODS.includes(request.method)) throw new AppError('pay_method_not_supported', { details: { channel: 'alipay', method: request.method } });
      if (request.expires_at_ms <= now()) throw new AppError('order_not_payable', { message: 'The payment has expired before it was opened.' });
      const bizContent = {
        out_trade_no: request.payNo,
        total_amount: fenToYuan(request.amount_fen),
        subject: subjectOf(request.subject),
        // The order's own deadline, so Alipay stops taking money when we stop waiting for it.
        time_expire: chinaTime(request.expires_at_ms),
        // One marketplace merchant's order alone: paid to that merchant's smid (直付通), never to the platform.
        ...subMerchantFields(request.subMerchantId, request.amount_fen),
      };
      const urls: Record<string, string> = { ...common(), notify_url: request.notifyUrl };
      if (request.returnUrl) urls.return_url = request.returnUrl;
      switch (request.method) {
        case 'qr': {
          const answer = await call('alipay.trade.precreate', bizContent, { notify_url: request.notifyUrl });
          if (answer.code !== SUCCESS) throw refused('alipay.trade.precreate', answer);
          const codeUrl = text(answer, 'qr_code');
          if (!codeUrl) throw new AppError('channel_unavailable', { message: 'Alipay precreate answered without qr_code' });
          return { kind: 'qr_code', codeUrl };
        }
        case 'page':
          return { kind: 'form', html: (await sdkReady()).pageExec('alipay.trade.page.pay', 'POST', { bizContent: { ...bizContent, product_code: 'FAST_INSTANT_TRADE_PAY' }, ...urls }) };
        case 'h5': {
          const wap = { ...bizContent, product_code: 'QUICK_WAP_WAY', ...(request.returnUrl ? { quit_url: request.returnUrl } : {}) };
          return { kind: 'redirect', url: (await sdkReady()).pageExec('alipay.trade.wap.pay', 'GET', { bizContent: wap, ...urls }) };
        }
        case 'app':
          // The app hands this signed order string to the Alipay client SDK as it is.
          return { kind: 'sdk_params', params: { orderStr: (await sdkReady()).sdkExec('alipay.trade.app.pay', { ...common(), bizContent: { ...bizContent, product_code: 'QUICK_MSECURITY_PAY' }, notify_url: request.notifyUrl }) } };
        default:
          throw new AppError('pay_method_not_supported', { details: { channel: 'alipay', method: request.method } });
      }
    },

    query,

    close,

    /**
     * A sub-order of a merge pay is refunded as the ordinary trade it is, by its own out_trade_no
     * ("被合并的子订单可通过各自的appid调用退款接口发起退款"): combineNo and subMerchantId are not sent,
     * and no other sub-order is touched.
     */
    async refund(request: RefundRequest): Promise<ChannelRefund> {
      const bizContent: Record<string, string> = {
        out_trade_no: request.payNo,
        refund_amount: fenToYuan(request.amount_fen),
        // The idempotency key: the same out_request_no again is the same refund, made once.
        out_request_no: request.refundNo,
      };
      if (request.channelTradeNo) bizContent.trade_no = request.channelTradeNo;
      if (request.reason) bizContent.refund_reason = subjectOf(request.reason);
      const answer = await call('alipay.trade.refund', bizContent);
      const base = { payNo: request.payNo, refundNo: request.refundNo };
      if (answer.code === SUCCESS) {
        // fund_change N: no money moved on this call, as when the refund was made earlier. Alipay
        // says to confirm such an answer with the refund query.
        if (answer.fund_change !== 'Y') return queryRefund(request.payNo, request.refundNo);
        const refund: ChannelRefund = { ...base, state: 'succeeded', amount_fen: request.amount_fen };
        const at = text(answer, 'gmt_refund_pay');
        if (at) refund.succeeded_at_ms = parseChinaTime(at, 'gmt_refund_pay');
        return refund;
      }
      if (REFUND_FAILED_SUB_CODES.has(answer.sub_code ?? '')) {
        return { ...base, state: 'failed', amount_fen: request.amount_fen, failure: `${answer.sub_code}: ${answer.sub_msg ?? answer.msg}` };
      }
      throw refused('alipay.trade.refund', answer);
    },

    queryRefund,

    async parseNotification(request) {
      return parseAlipayNotification(await sdkReady(), settings.appId, request);
    },

    answer(outcome) {
      // Alipay stops retrying on exactly these seven bytes; anything else is a failure to retry.
      return { status: 200, contentType: 'text/plain; charset=utf-8', body: outcome === 'accepted' ? 'success' : 'failure' };
    },

    async downloadBill(date: string): Promise<Uint8Array> {
      if (!/^\d{4}-\d{2}-\d{2}$/.test(date)) throw new AppError('invalid_field', { field: 'date', message: 'The bill date is YYYY-MM-DD.' });
      const answer = await call('alipay.data.dataservice.bill.downloadurl.query', { bill_type: 'trade', bill_date: date });
      if (answer.code !== SUCCESS) throw refused('alipay.data.dataservice.bill.downloadurl.query', answer);
      const url = text(answer, 'bill_download_url');
      if (!url) throw new AppError('channel_unavailable', { message: 'Alipay gave no bill_download_url' });
      return download(url, settings.billDownloadTimeout_ms);
    },

    parseBill: parseAlipayBill,
  };
}

/** The URL lives 30 seconds, so it is fetched at once and never stored. */
async function download(url: string, timeout_ms: number): Promise<Uint8Array> {
  let response: Response;
  try {
    response = await fetch(url, { signal: AbortSignal.timeout(timeout_ms) });
  } catch (error) {
    throw new AppError('channel_unavailable', { message: `Alipay bill download failed: ${String(error)}` });
  }
  if (response.status !== 200) throw new AppError('channel_unavailable', { message: `Alipay bill download answered HTTP ${response.status}` });
  const declared = Number(response.headers.get('content-length') ?? 0);
  if (declared > MAX_BILL_BYTES) throw new AppError('channel_unavailable', { message: `Alipay bill is larger than ${MAX_BILL_BYTES} bytes` });
  const bytes = new Uint8Array(await response.arrayBuffer());
  if (bytes.byteLength > MAX_BILL_BYTES) throw new AppError('channel_unavailable', { message: `Alipay bill is larger than ${MAX_BILL_BYTES} bytes` });
  return bytes;
}
