import { verify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { AppError } from '../../platform/errors.ts';
import { parseBillZip } from './ccb/bill.ts';
import { ebsOperations, unavailable } from './ccb/ebs.ts';
import { isMarketNotification, marketOperations, parseMarketNotification, type CcbMarketSettings } from './ccb/market-pay.ts';
import {
  CURCODE_CNY, RETURNTYPE_QR_JSON, SANDBOX_NOTIFY_FIELD, SANDBOX_RETURN_FIELD, TXCODE_PAGE, TXCODE_QR,
  ccbPublicKeyObject, chinaStamp, fenToYuan, notificationSignedText, pubOf, requestMac, yuanToFen,
} from './ccb/protocol.ts';
import type { ChannelAnswer, ChannelNotice, CreateTradeRequest, InboundRequest, PayAction, PayMethod, PaymentChannel, RefundRequest, SentAt } from './types.ts';

export type { CcbMarketSettings } from './ccb/market-pay.ts';

/**
 * CCB LongPay (龙支付). Payments go through the bank's gateway (ccbMain) with an MD5 MAC keyed
 * by the tail of CCB's public key; the bank's notifications are MD5withRSA-signed with its
 * private key; query, refund and bill go through the merchant's 外联平台 (EBS) client.
 * See docs/channels/ccb.md for configuration and for what is unverified against the bank.
 */

export interface CcbSettings {
  /** 商户代码, e.g. 105000000000000. */
  merchantId: string;
  /** 柜台代码. */
  posId: string;
  /** 分行代码. */
  branchId: string;
  /** CCB's public key: hex of its X.509 DER as the bank hands it out, or PEM. */
  ccbPublicKey: string;
  /** `…/CCBIS/ccbMain?CCB_IBSVersion=V6`. */
  gatewayUrl: string;
  /** The 外联平台 client's HTTP address. */
  ebsUrl: string;
  ebsUserId: string;
  ebsPassword: string;
  /** Where the 外联平台 client's downloaded files are served (its merchant/shls folder). */
  billUrl: string;
  timeout_ms: number;
  /**
   * Send the notify and return URLs with each payment. The real bank takes them from the
   * 商户服务平台 instead; only the sandbox reads these fields.
   */
  sendMerchantUrls: boolean;
  /**
   * 惠市宝 (market pay), for combined payments: one buyer payment over a sub-order per market
   * merchant. Absent: the merchant has no market, and combined payments are not offered (maxSubOrders 0).
   */
  market?: CcbMarketSettings;
}

export const CCB_PRODUCTION_GATEWAY = 'https://ibsbjstar.ccb.com.cn/CCBIS/ccbMain?CCB_IBSVersion=V6';
/** Every call to the bank or the EBS client gives up after this long unless configured. */
export const CCB_TIMEOUT_MS = 10_000;
/** Largest notification body we look at; CCB's are a few hundred bytes. */
const MAX_NOTIFICATION_BYTES = 16 * 1024;

const METHODS: readonly PayMethod[] = ['qr', 'page', 'h5'];

/**
 * Reads CCB_* variables; undefined when CCB_MERCHANT_ID is absent. A key may be given inline
 * (CCB_PUBLIC_KEY) or as a file (CCB_PUBLIC_KEY_FILE), and the EBS password likewise.
 */
export function ccbSettingsFromEnv(env: NodeJS.ProcessEnv): CcbSettings | undefined {
  if (!env.CCB_MERCHANT_ID) return undefined;
  const missing: string[] = [];
  const need = (name: string): string => {
    const value = env[name];
    if (!value) missing.push(name);
    return value ?? '';
  };
  const inlineOrFile = (name: string): string => {
    if (env[name]) return env[name]!;
    const file = env[`${name}_FILE`];
    if (file) return readFileSync(file, 'utf8').trim();
    missing.push(`${name} (or ${name}_FILE)`);
    return '';
  };
  const settings: CcbSettings = {
    merchantId: env.CCB_MERCHANT_ID,
    posId: need('CCB_POS_ID'),
    branchId: need('CCB_BRANCH_ID'),
    ccbPublicKey: inlineOrFile('CCB_PUBLIC_KEY'),
    gatewayUrl: env.CCB_GATEWAY_URL || CCB_PRODUCTION_GATEWAY,
    ebsUrl: need('CCB_EBS_URL'),
    ebsUserId: need('CCB_EBS_USER_ID'),
    ebsPassword: inlineOrFile('CCB_EBS_PASSWORD'),
    billUrl: need('CCB_BILL_URL').replace(/\/+$/, ''),
    timeout_ms: env.CCB_TIMEOUT_MS ? Number(env.CCB_TIMEOUT_MS) : CCB_TIMEOUT_MS,
    sendMerchantUrls: env.CCB_SEND_MERCHANT_URLS === 'true' || env.CCB_SEND_MERCHANT_URLS === '1',
  };
  if (env.CCB_MARKET_ID) {
    settings.market = {
      url: need('CCB_MARKET_URL').replace(/\/+$/, ''),
      marketId: env.CCB_MARKET_ID,
      systemId: need('CCB_MARKET_SYSTEM_ID'),
      channelCode: need('CCB_MARKET_CHANNEL_CODE'),
      ownMerchantId: need('CCB_MARKET_OWN_MERCHANT_ID'),
    };
  }
  if (missing.length > 0) throw new Error(`CCB_MERCHANT_ID is set but these are missing: ${missing.join(', ')}`);
  if (!Number.isSafeInteger(settings.timeout_ms) || settings.timeout_ms <= 0) throw new Error('CCB_TIMEOUT_MS must be a positive integer');
  return settings;
}

export function ccbChannel(settings: CcbSettings, now: () => number): PaymentChannel {
  const ccbKey = ccbPublicKeyObject(settings.ccbPublicKey);
  const pub = pubOf(ccbKey);
  const ebs = ebsOperations(settings, now);
  const market = settings.market
    ? marketOperations({ settings: settings.market, ccbKey, pub, timeout_ms: settings.timeout_ms, sendMerchantUrls: settings.sendMerchantUrls, now })
    : undefined;

  /** The 惠市宝 main order a trade belongs to, or undefined for a LongPay trade. */
  function mainOrderOf(payNo: string, sent: { combineNo?: string | undefined; subMerchantId?: string | undefined } | undefined): string | undefined {
    if (sent?.combineNo !== undefined) return sent.combineNo;
    return sent?.subMerchantId !== undefined ? payNo : undefined;
  }

  function mustHaveMarket(): NonNullable<typeof market> {
    if (!market) throw new AppError('pay_method_not_supported', { message: 'CCB combined payments need 惠市宝 (CCB_MARKET_ID).', details: { channel: 'ccb' } });
    return market;
  }

  function orderFields(request: CreateTradeRequest, txcode: string): Record<string, string> {
    return {
      MERCHANTID: settings.merchantId,
      POSID: settings.posId,
      BRANCHID: settings.branchId,
      ORDERID: request.payNo,
      PAYMENT: fenToYuan(request.amount_fen),
      CURCODE: CURCODE_CNY,
      TXCODE: txcode,
      REMARK1: '',
      REMARK2: '',
      // The bank stops taking money at the order's own deadline.
      TIMEOUT: chinaStamp(request.expires_at_ms),
    };
  }

  function sent(fields: Record<string, string>, request: CreateTradeRequest): URLSearchParams {
    const params = new URLSearchParams({ ...fields, MAC: requestMac(fields, pub) });
    if (settings.sendMerchantUrls) {
      params.set(SANDBOX_NOTIFY_FIELD, request.notifyUrl);
      if (request.returnUrl) params.set(SANDBOX_RETURN_FIELD, request.returnUrl);
    }
    return params;
  }

  async function gatewayJson(url: string, init: RequestInit): Promise<Record<string, unknown>> {
    let response: Response;
    try {
      response = await fetch(url, { ...init, signal: AbortSignal.timeout(settings.timeout_ms) });
    } catch (error) {
      throw unavailable('the CCB gateway did not answer', { error: String(error) });
    }
    const text = await response.text();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw unavailable('the CCB gateway gave an unreadable answer', { status: response.status, body: text.slice(0, 200) });
    }
    if (typeof body !== 'object' || body === null) throw unavailable('the CCB gateway gave an unreadable answer', { status: response.status });
    const answer = body as Record<string, unknown>;
    if (answer.SUCCESS !== 'true') {
      throw new AppError('channel_refused', { details: { channel: 'ccb', code: answer.ERRCODE ?? '', message: answer.ERRMSG ?? '' } });
    }
    return answer;
  }

  async function createQr(request: CreateTradeRequest): Promise<PayAction> {
    const fields = { ...orderFields(request, TXCODE_QR), RETURNTYPE: RETURNTYPE_QR_JSON };
    const first = await gatewayJson(settings.gatewayUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: sent(fields, request).toString(),
    });
    if (typeof first.PAYURL !== 'string') throw unavailable('the CCB gateway gave no PAYURL', {});
    const second = await gatewayJson(first.PAYURL, { method: 'GET' });
    if (typeof second.QRURL !== 'string') throw unavailable('the CCB gateway gave no QRURL', {});
    return { kind: 'qr_code', codeUrl: decodeURIComponent(second.QRURL) };
  }

  function createPage(request: CreateTradeRequest): PayAction {
    const fields = { ...orderFields(request, TXCODE_PAGE), TYPE: '1', GATEWAY: '', CLIENTIP: '', REGINFO: '', PROINFO: '', REFERER: '' };
    const joiner = settings.gatewayUrl.includes('?') ? '&' : '?';
    return { kind: 'redirect', url: `${settings.gatewayUrl}${joiner}${sent(fields, request).toString()}` };
  }

  async function parseNotification(request: InboundRequest): Promise<ChannelNotice> {
    if (request.rawBody.length > MAX_NOTIFICATION_BYTES) throw rejected('the notification is too large');
    if (isMarketNotification(request.rawBody)) {
      if (!settings.market) throw rejected('a 惠市宝 notification, but no market is configured');
      return parseMarketNotification(request.rawBody, ccbKey, settings.market.marketId);
    }
    const query = request.url.includes('?') ? request.url.slice(request.url.indexOf('?') + 1) : '';
    // CCB posts a form; a GET carries the same fields in the query string.
    const fields = new URLSearchParams(request.rawBody.trim() !== '' ? request.rawBody : query);
    const sign = fields.get('SIGN') ?? '';
    if (!/^(?:[0-9a-fA-F]{2})+$/.test(sign)) throw rejected('the notification carries no signature');
    let valid = false;
    try {
      valid = verify('md5', Buffer.from(notificationSignedText(fields), 'utf8'), ccbKey, Buffer.from(sign, 'hex'));
    } catch {
      valid = false;
    }
    if (!valid) throw rejected('the notification signature does not verify');
    // Signed by the bank, but for another counter of ours or another merchant: not ours to act on.
    if (fields.get('POSID') !== settings.posId || fields.get('BRANCHID') !== settings.branchId) throw rejected('the notification is for another counter');
    const payNo = fields.get('ORDERID') ?? '';
    let amount_fen: number;
    try {
      amount_fen = yuanToFen(fields.get('PAYMENT') ?? '');
    } catch {
      throw rejected('the notification amount is unreadable');
    }
    const success = fields.get('SUCCESS');
    if (payNo === '' || (success !== 'Y' && success !== 'N')) throw rejected('the notification lacks ORDERID or SUCCESS');
    // CCB's notice names neither its own serial nor the payment time; query for those.
    return { kind: 'trade', trade: { payNo, state: success === 'Y' ? 'succeeded' : 'failed', amount_fen } };
  }

  return {
    name: 'ccb',
    methods: METHODS,
    async create(request) {
      if (!METHODS.includes(request.method)) throw new AppError('pay_method_not_supported', { field: 'method' });
      if (request.subMerchantId !== undefined) {
        // One merchant's order alone is a 惠市宝 main order of one sub-order under the same number, so the money is the merchant's (二清).
        return mustHaveMarket().createCombined({ ...request, combineNo: request.payNo, subOrders: [{ payNo: request.payNo, amount_fen: request.amount_fen, subject: request.subject, subMerchantId: request.subMerchantId }] });
      }
      return request.method === 'qr' ? createQr(request) : createPage(request);
    },
    // A sub-order lives at 惠市宝, found through its main order: the combined number, or its own for a one-merchant trade.
    query: async (payNo: string, sent?: SentAt) => {
      const mainOrderNo = mainOrderOf(payNo, sent);
      return mainOrderNo !== undefined ? mustHaveMarket().querySubOrder(payNo, mainOrderNo) : ebs.query(payNo);
    },
    close: async (payNo: string, sent?: SentAt) => {
      // 合单 has no partial close: a sub-order closes only with its whole main order (closeCombined).
      if (sent?.combineNo !== undefined) throw new AppError('invalid_request', { message: 'A CCB sub-order closes only with its main order.', details: { channel: 'ccb', combineNo: sent.combineNo } });
      return sent?.subMerchantId !== undefined ? mustHaveMarket().closeCombined(payNo, [{ payNo }]) : ebs.close(payNo);
    },
    refund: async (request: RefundRequest) => {
      const mainOrderNo = mainOrderOf(request.payNo, request);
      return mainOrderNo !== undefined ? mustHaveMarket().refundSubOrder({ ...request, combineNo: mainOrderNo }) : ebs.refund(request);
    },
    queryRefund: async (payNo: string, refundNo: string, sent?: SentAt) =>
      mainOrderOf(payNo, sent) !== undefined ? mustHaveMarket().querySubOrderRefund(payNo, refundNo) : ebs.queryRefund(payNo, refundNo),
    maxSubOrders: market ? market.maxSubOrders : 0,
    createCombined: async (request) => mustHaveMarket().createCombined(request),
    queryCombined: async (combineNo, subOrders) => mustHaveMarket().queryCombined(combineNo, subOrders),
    closeCombined: async (combineNo, subOrders) => mustHaveMarket().closeCombined(combineNo, subOrders),
    parseNotification,
    answer(outcome): ChannelAnswer {
      // The bank looks only at the HTTP status; the body is for people reading logs.
      return outcome === 'accepted'
        ? { status: 200, contentType: 'text/plain; charset=utf-8', body: 'SUCCESS' }
        : { status: 400, contentType: 'text/plain; charset=utf-8', body: 'FAIL' };
    },
    downloadBill: ebs.downloadBill,
    parseBill(file) {
      try {
        return parseBillZip(file);
      } catch (error) {
        throw unavailable('the CCB bill file is unreadable', { error: String(error) });
      }
    },
  };
}

function rejected(message: string): AppError {
  return new AppError('notification_rejected', { message, details: { channel: 'ccb' } });
}
