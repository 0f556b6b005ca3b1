import type { SandboxCore } from '../core.ts';
import type { SandboxTrade } from '../trades.ts';
import { cashierUrl } from '../module.ts';
import { chinaTime, digitsFrom, fenOf, parseChinaTime, yuan } from './protocol.ts';

/**
 * The trade methods of Alipay's v2 gateway, played on the sandbox core. Each takes the parsed
 * biz_content and the common parameters and returns the body of `<method>_response`, or for
 * the buyer-facing methods (page, wap, app) the trade whose cashier the browser goes to.
 */

export type ApiBody = Record<string, unknown> & { code: string; msg: string };
export type ApiResult = { kind: 'answer'; body: ApiBody } | { kind: 'cashier'; payNo: string };

export interface ApiContext {
  core: SandboxCore;
  base: () => string;
  biz: Record<string, unknown>;
  params: Readonly<Record<string, string>>;
}

/** Alipay's amount ceiling for one trade: 100,000,000.00 yuan. */
export const MAX_TRADE_FEN = 10_000_000_000;
export const MAX_OUT_TRADE_NO_CHARS = 64;
/** Most settle_detail_infos one trade's settle_info may carry in the sandbox (Alipay's own number is not published). */
const MAX_SETTLE_DETAILS = 10;
/** Expiry when the merchant gives none: a QR code is good for 2 hours, a payment page for 15 days. */
const DEFAULT_QR_EXPIRY_MS = 2 * 3600_000;
const DEFAULT_PAGE_EXPIRY_MS = 15 * 24 * 3600_000;

export const ok = (fields: Record<string, unknown> = {}): ApiBody => ({ code: '10000', msg: 'Success', ...fields });
export const businessFailed = (sub_code: string, sub_msg: string): ApiBody => ({ code: '40004', msg: 'Business Failed', sub_code, sub_msg });
export const answer = (body: ApiBody): ApiResult => ({ kind: 'answer', body });

export const TRADE_METHODS: Record<string, (ctx: ApiContext) => ApiResult> = {
  'alipay.trade.precreate': (ctx) => {
    const made = createTrade(ctx, 'precreate', DEFAULT_QR_EXPIRY_MS);
    if ('code' in made) return answer(made);
    return answer(ok({ out_trade_no: made.payNo, qr_code: cashierUrl(ctx.base(), 'alipay', made.payNo) }));
  },
  'alipay.trade.page.pay': (ctx) => buyerFacing(ctx, 'page', 'FAST_INSTANT_TRADE_PAY'),
  'alipay.trade.wap.pay': (ctx) => buyerFacing(ctx, 'wap', 'QUICK_WAP_WAY'),
  'alipay.trade.app.pay': (ctx) => buyerFacing(ctx, 'app', 'QUICK_MSECURITY_PAY'),

  'alipay.trade.query': (ctx) => {
    const trade = findTrade(ctx);
    if (!trade) return answer(businessFailed('ACQ.TRADE_NOT_EXIST', '交易不存在'));
    closeIfExpired(ctx.core, trade);
    const paid = trade.paid_at_ms !== undefined;
    const body = ok({
      trade_no: trade.tradeNo,
      out_trade_no: trade.payNo,
      trade_status: ALIPAY_STATUS[trade.state],
      total_amount: yuan(trade.amount_fen),
      receipt_amount: yuan(paid ? trade.amount_fen : 0),
      buyer_pay_amount: yuan(paid ? trade.amount_fen : 0),
      point_amount: '0.00',
      invoice_amount: yuan(paid ? trade.amount_fen : 0),
    });
    if (paid) Object.assign(body, { send_pay_date: chinaTime(trade.paid_at_ms!), ...buyerOf(trade.tradeNo) });
    return answer(body);
  },

  'alipay.trade.close': (ctx) => {
    const trade = findTrade(ctx);
    if (!trade) return answer(businessFailed('ACQ.TRADE_NOT_EXIST', '交易不存在'));
    closeIfExpired(ctx.core, trade);
    // Only a trade waiting for the buyer closes; a paid or closed one is "not in a state to close".
    if (trade.state !== 'WAIT_BUYER_PAY') return answer(businessFailed('ACQ.TRADE_STATUS_ERROR', '交易状态不合法'));
    closeInSandbox(ctx.core, trade);
    return answer(ok({ trade_no: trade.tradeNo, out_trade_no: trade.payNo }));
  },

  'alipay.trade.refund': (ctx) => {
    const trade = findTrade(ctx);
    if (!trade) return answer(businessFailed('ACQ.TRADE_NOT_EXIST', '交易不存在'));
    const amount_fen = fenOf(ctx.biz.refund_amount);
    if (amount_fen === undefined || amount_fen <= 0) return answer(businessFailed('ACQ.INVALID_PARAMETER', '参数无效: refund_amount'));
    // Without out_request_no the refund is keyed by the trade, which allows one refund only.
    const refundNo = typeof ctx.biz.out_request_no === 'string' && ctx.biz.out_request_no ? ctx.biz.out_request_no : trade.payNo;
    const earlier = trade.refunds.find((r) => r.refundNo === refundNo);
    if (earlier && earlier.amount_fen !== amount_fen) return answer(businessFailed('ACQ.REFUND_AMT_NOT_EQUAL_TOTAL', '退款金额超限'));
    if (!earlier) {
      if (trade.state === 'FINISHED') return answer(businessFailed('ACQ.TRADE_HAS_FINISHED', '交易已完结'));
      if (trade.paid_at_ms === undefined) return answer(businessFailed('ACQ.TRADE_STATUS_ERROR', '交易状态不合法'));
      if (ctx.core.refunded_fen(trade) + amount_fen > trade.amount_fen) return answer(businessFailed('ACQ.REFUND_AMT_NOT_EQUAL_TOTAL', '退款金额超限'));
    }
    const refund = earlier ?? ctx.core.refund('alipay', trade.payNo, { refundNo, amount_fen, reason: String(ctx.biz.refund_reason ?? '') });
    if (refund.state === 'FAILED') return answer(businessFailed('ACQ.SELLER_BALANCE_NOT_ENOUGH', '卖家余额不足'));
    const body = ok({
      trade_no: trade.tradeNo,
      out_trade_no: trade.payNo,
      // Y only on the call that moved the money; a repeat of a made refund says N.
      fund_change: earlier ? 'N' : 'Y',
      refund_fee: yuan(ctx.core.refunded_fen(trade)),
      send_back_fee: yuan(refund.amount_fen),
      ...buyerOf(trade.tradeNo),
    });
    if (refund.succeeded_at_ms !== undefined) body.gmt_refund_pay = chinaTime(refund.succeeded_at_ms);
    return answer(body);
  },

  'alipay.trade.fastpay.refund.query': (ctx) => {
    const trade = findTrade(ctx);
    if (!trade) return answer(businessFailed('ACQ.TRADE_NOT_EXIST', '交易不存在'));
    const refundNo = typeof ctx.biz.out_request_no === 'string' && ctx.biz.out_request_no ? ctx.biz.out_request_no : trade.payNo;
    const refund = trade.refunds.find((r) => r.refundNo === refundNo);
    // A refund not received, or failed, is answered with success and no refund fields at all.
    if (!refund || refund.state === 'FAILED') return answer(ok());
    const body = ok({ trade_no: trade.tradeNo, out_trade_no: trade.payNo, out_request_no: refund.refundNo, total_amount: yuan(trade.amount_fen), refund_amount: yuan(refund.amount_fen) });
    if (refund.state === 'SUCCESS') {
      body.refund_status = 'REFUND_SUCCESS';
      const options = Array.isArray(ctx.biz.query_options) ? ctx.biz.query_options : [];
      if (options.includes('gmt_refund_pay')) body.gmt_refund_pay = chinaTime(refund.succeeded_at_ms!);
    }
    return answer(body);
  },
};

export const ALIPAY_STATUS: Record<SandboxTrade['state'], string> = {
  WAIT_BUYER_PAY: 'WAIT_BUYER_PAY',
  SUCCESS: 'TRADE_SUCCESS',
  CLOSED: 'TRADE_CLOSED',
  FINISHED: 'TRADE_FINISHED',
};

/** The buyer, made up from the trade number so every answer about a trade names the same one. */
export function buyerOf(tradeNo: string): { buyer_user_id: string; buyer_logon_id: string } {
  return { buyer_user_id: `2088${digitsFrom(tradeNo, 12)}`, buyer_logon_id: `138****${digitsFrom(tradeNo, 4)}` };
}

function buyerFacing(ctx: ApiContext, kind: string, productCode: string): ApiResult {
  if (ctx.biz.product_code !== undefined && ctx.biz.product_code !== productCode) {
    return answer(businessFailed('ACQ.INVALID_PARAMETER', `参数无效: product_code must be ${productCode}`));
  }
  const made = createTrade(ctx, kind, DEFAULT_PAGE_EXPIRY_MS);
  return 'code' in made ? answer(made) : { kind: 'cashier', payNo: made.payNo };
}

/** Creates the trade, or finds the same one again; a changed or finished one is refused as Alipay does. */
function createTrade(ctx: ApiContext, method: string, defaultExpiry_ms: number): SandboxTrade | ApiBody {
  const { biz, core } = ctx;
  const payNo = biz.out_trade_no;
  if (typeof payNo !== 'string' || payNo === '' || payNo.length > MAX_OUT_TRADE_NO_CHARS) return businessFailed('ACQ.INVALID_PARAMETER', '参数无效: out_trade_no');
  const amount_fen = fenOf(biz.total_amount);
  if (amount_fen === undefined || amount_fen <= 0) return businessFailed('ACQ.INVALID_PARAMETER', '参数无效: total_amount');
  if (amount_fen > MAX_TRADE_FEN) return businessFailed('ACQ.TOTAL_FEE_EXCEED', '订单金额超过限额');
  if (typeof biz.subject !== 'string' || biz.subject === '') return businessFailed('ACQ.INVALID_PARAMETER', '参数无效: subject');
  let expires_at_ms = core.now() + defaultExpiry_ms;
  if (biz.time_expire !== undefined) {
    const at = parseChinaTime(biz.time_expire);
    if (at === undefined) return businessFailed('ACQ.INVALID_PARAMETER', '参数无效: time_expire');
    if (at <= core.now()) return businessFailed('ACQ.TRADE_HAS_CLOSE', '交易已经关闭');
    expires_at_ms = at;
  }
  const subMerchant = readSubMerchant(biz, amount_fen);
  if (typeof subMerchant === 'object') return subMerchant;
  const existing = core.trade('alipay', payNo);
  if (existing) {
    // A sub-order of a merge pay is not opened again as a trade of its own.
    if (existing.combineNo !== undefined || existing.subMerchantId !== subMerchant) return businessFailed('ACQ.CONTEXT_INCONSISTENT', '交易信息被篡改');
    closeIfExpired(core, existing);
    if (existing.state === 'SUCCESS' || existing.state === 'FINISHED') return businessFailed('ACQ.TRADE_HAS_SUCCESS', '交易已被支付');
    if (existing.state === 'CLOSED') return businessFailed('ACQ.TRADE_HAS_CLOSE', '交易已经关闭');
    if (existing.amount_fen !== amount_fen) return businessFailed('ACQ.CONTEXT_INCONSISTENT', '交易信息被篡改');
    return existing;
  }
  return core.createTrade({
    channel: 'alipay',
    payNo,
    amount_fen,
    subject: biz.subject,
    method,
    notifyUrl: ctx.params.notify_url ?? '',
    returnUrl: ctx.params.return_url,
    expires_at_ms,
    ...(subMerchant !== undefined ? { subMerchantId: subMerchant } : {}),
  });
}

/**
 * 直付通: `sub_merchant.merchant_id` names the secondary merchant (smid) the money is for, and then
 * `settle_info` is required ("直付通场景下必传"), its settle_detail_infos adding up to the trade's
 * amount (the sandbox plays trans_in_type defaultSettle, the smid's own settlement account). The smid,
 * undefined for a trade of the platform's own, or the refusal.
 */
export function readSubMerchant(detail: Record<string, unknown>, amount_fen: number): string | undefined | ApiBody {
  const { sub_merchant: subMerchant, settle_info: settleInfo } = detail;
  if (subMerchant === undefined) {
    return settleInfo === undefined ? undefined : businessFailed('ACQ.INVALID_PARAMETER', '参数无效: settle_info is for 直付通 trades, which name sub_merchant');
  }
  if (!isObject(subMerchant) || typeof subMerchant.merchant_id !== 'string' || subMerchant.merchant_id === '') return businessFailed('ACQ.INVALID_PARAMETER', '参数无效: sub_merchant.merchant_id');
  if (!isObject(settleInfo)) return businessFailed('ACQ.INVALID_PARAMETER', '参数无效: settle_info (直付通场景下必传)');
  const details = settleInfo.settle_detail_infos;
  if (!Array.isArray(details) || details.length === 0 || details.length > MAX_SETTLE_DETAILS) return businessFailed('ACQ.INVALID_PARAMETER', '参数无效: settle_info.settle_detail_infos');
  let settled_fen = 0;
  for (const settleDetail of details) {
    if (!isObject(settleDetail) || settleDetail.trans_in_type !== 'defaultSettle') return businessFailed('ACQ.INVALID_PARAMETER', '参数无效: settle_detail_infos.trans_in_type');
    const part_fen = fenOf(settleDetail.amount);
    if (part_fen === undefined || part_fen <= 0) return businessFailed('ACQ.INVALID_PARAMETER', '参数无效: settle_detail_infos.amount');
    settled_fen += part_fen;
  }
  if (settled_fen !== amount_fen) return businessFailed('ACQ.INVALID_PARAMETER', '参数无效: settle_detail_infos amounts must add up to total_amount');
  return subMerchant.merchant_id;
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Closes a trade. A sub-order of a merge pay closes with its whole merge: the sandbox plays the
 * contracted all-or-nothing option (同时成功或同时失败), under which a merge with one sub-order closed
 * can no longer be paid, so its siblings close too (each notified TRADE_CLOSED) rather than linger.
 */
export function closeInSandbox(core: SandboxCore, trade: SandboxTrade): void {
  if (trade.combineNo === undefined) {
    core.close('alipay', trade.payNo);
    return;
  }
  const combined = core.combined('alipay', trade.combineNo);
  if (combined) core.closeCombined('alipay', combined.combineNo, combined.payNos);
}

function findTrade(ctx: ApiContext): SandboxTrade | undefined {
  const { biz, core } = ctx;
  if (typeof biz.trade_no === 'string' && biz.trade_no) return core.tradeByChannelNo('alipay', biz.trade_no);
  if (typeof biz.out_trade_no === 'string' && biz.out_trade_no) return core.trade('alipay', biz.out_trade_no);
  return undefined;
}

/** Alipay closes an unpaid trade when its time runs out (and notifies TRADE_CLOSED); the sandbox does it when it next looks. */
export function closeIfExpired(core: SandboxCore, trade: SandboxTrade): void {
  if (trade.state === 'WAIT_BUYER_PAY' && core.now() > trade.expires_at_ms) closeInSandbox(core, trade);
}
