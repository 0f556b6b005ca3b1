import type { SandboxCore } from '../core.ts';
import { SandboxError, type SandboxCombined, type SandboxTrade } from '../trades.ts';
import { fenOf, parseChinaTime } from './protocol.ts';
import {
  answer,
  businessFailed,
  closeIfExpired,
  isObject,
  MAX_OUT_TRADE_NO_CHARS,
  MAX_TRADE_FEN,
  ok,
  readSubMerchant,
  type ApiBody,
  type ApiContext,
  type ApiResult,
} from './trade-api.ts';

/**
 * Alipay's merge pay (合并支付) on the sandbox core: `alipay.trade.merge.precreate` takes the
 * sub-orders (order_details) and answers a pre_order_no, which `alipay.trade.wap.merge.pay` (H5)
 * or `alipay.trade.app.merge.pay` (the app) opens at the cashier; `alipay.trade.page.merge.pay`
 * (desktop) takes the order_details itself. Every sub-order is a trade of its own afterwards:
 * queried, refunded and closed by its out_trade_no through the ordinary trade methods.
 *
 * The sandbox plays the contracted all-or-nothing option (子订单明细必须同时支付成功或者同时支付失败),
 * under which out_merge_no is required and unique: it is the core's combined number.
 */

/**
 * Most order_details one merge takes. Alipay publishes no number; the sandbox bounds a request
 * at WeChat's published 50 so no adapter's chosen cap is ever the sandbox's to enforce.
 */
export const MAX_MERGE_ORDER_DETAILS = 50;
/** Most pre_order_no kept for the merge pay calls; the oldest is forgotten first. */
export const MAX_PRE_ORDERS = 100_000;
/** Expiry without time_expire or timeout_express: 15 minutes under the all-or-nothing option. */
const DEFAULT_MERGE_EXPIRY_MS = 15 * 60_000;
const TIMEOUT_EXPRESS = /^(\d{1,5})([mhd])$/;
const TIMEOUT_UNIT_MS = { m: 60_000, h: 3600_000, d: 86_400_000 } as const;
/** timeout_express is 1m to 15d. */
const MAX_TIMEOUT_EXPRESS_MS = 15 * 86_400_000;

/** Which pay call may open a merge made with which product_code. */
const PRODUCT_OF_METHOD = {
  'alipay.trade.wap.merge.pay': 'QUICK_WAP_WAY',
  'alipay.trade.app.merge.pay': 'QUICK_MSECURITY_PAY',
  'alipay.trade.page.merge.pay': 'FAST_INSTANT_TRADE_PAY',
} as const;
const PRECREATE_PRODUCTS: readonly string[] = [PRODUCT_OF_METHOD['alipay.trade.wap.merge.pay'], PRODUCT_OF_METHOD['alipay.trade.app.merge.pay']];

interface SubOrder {
  payNo: string;
  amount_fen: number;
  subject: string;
  subMerchantId?: string;
}

/** The merge methods, with the pre_order_no they handed out (a sandbox's own, forgotten on restart as Alipay's are not). */
export function mergeMethods(): Record<string, (ctx: ApiContext) => ApiResult> {
  const preOrders = new Map<string, string>();

  function remember(preOrderNo: string, combineNo: string): void {
    if (preOrders.has(preOrderNo)) return;
    if (preOrders.size >= MAX_PRE_ORDERS) preOrders.delete(preOrders.keys().next().value!);
    preOrders.set(preOrderNo, combineNo);
  }

  /** Opens a merge made by precreate: the browser or app goes to its cashier. */
  function openPreOrder(ctx: ApiContext, method: 'alipay.trade.wap.merge.pay' | 'alipay.trade.app.merge.pay'): ApiResult {
    const preOrderNo = ctx.biz.pre_order_no;
    if (typeof preOrderNo !== 'string' || preOrderNo === '') return answer(businessFailed('ACQ.INVALID_PARAMETER', '参数无效: pre_order_no'));
    const combineNo = preOrders.get(preOrderNo);
    const combined = combineNo === undefined ? undefined : ctx.core.combined('alipay', combineNo);
    if (!combined) return answer(businessFailed('ACQ.TRADE_NOT_EXIST', '交易不存在'));
    if (combined.method !== PRODUCT_OF_METHOD[method]) return answer(businessFailed('ACQ.INVALID_PARAMETER', `参数无效: the merge was precreated for ${combined.method}, not for ${method}`));
    const refusal = notPayable(ctx.core, combined);
    if (refusal) return answer(refusal);
    // notify_url and return_url are the pay call's public parameters; given there, they win.
    for (const trade of ctx.core.tradesOf(combined)) {
      if (ctx.params.notify_url) trade.notifyUrl = ctx.params.notify_url;
      if (ctx.params.return_url) trade.returnUrl = ctx.params.return_url;
    }
    return { kind: 'cashier', payNo: combined.combineNo };
  }

  return {
    'alipay.trade.merge.precreate': (ctx) => {
      const made = createMerge(ctx, PRECREATE_PRODUCTS, () => ctx.core.newChannelNo());
      if ('code' in made) return answer(made);
      const preOrderNo = made.combined.extra.pre_order_no!;
      remember(preOrderNo, made.combined.combineNo);
      return answer(
        ok({
          pre_order_no: preOrderNo,
          out_merge_no: made.combined.combineNo,
          order_detail_results: made.trades.map((trade) => ({ app_id: ctx.params.app_id, out_trade_no: trade.payNo, success: true, result_code: 'SUCCESS' })),
        }),
      );
    },
    'alipay.trade.wap.merge.pay': (ctx) => openPreOrder(ctx, 'alipay.trade.wap.merge.pay'),
    'alipay.trade.app.merge.pay': (ctx) => openPreOrder(ctx, 'alipay.trade.app.merge.pay'),
    'alipay.trade.page.merge.pay': (ctx) => {
      const made = createMerge(ctx, [PRODUCT_OF_METHOD['alipay.trade.page.merge.pay']], () => '');
      if ('code' in made) return answer(made);
      return { kind: 'cashier', payNo: made.combined.combineNo };
    },
  };
}

/**
 * Makes the merge from out_merge_no and order_details, or finds the same one again. A used
 * out_merge_no with other sub-orders, or a sub-order number already used, is refused as Alipay
 * refuses a changed order; a paid or closed merge is reported as such.
 */
function createMerge(ctx: ApiContext, products: readonly string[], newPreOrderNo: () => string): { combined: SandboxCombined; trades: SandboxTrade[] } | ApiBody {
  const { biz, core } = ctx;
  const combineNo = biz.out_merge_no;
  if (typeof combineNo !== 'string' || combineNo === '' || combineNo.length > MAX_OUT_TRADE_NO_CHARS) {
    return businessFailed('ACQ.INVALID_PARAMETER', '参数无效: out_merge_no (required under the all-or-nothing option)');
  }
  const expires_at_ms = mergeExpiry(biz, core.now());
  if (typeof expires_at_ms === 'object') return expires_at_ms;
  const details = biz.order_details;
  if (!Array.isArray(details) || details.length === 0) return businessFailed('ACQ.INVALID_PARAMETER', '参数无效: order_details');
  if (details.length > MAX_MERGE_ORDER_DETAILS) return businessFailed('ACQ.INVALID_PARAMETER', `参数无效: order_details holds more than ${MAX_MERGE_ORDER_DETAILS}`);
  const subOrders: SubOrder[] = [];
  let productCode: string | undefined;
  for (const detail of details) {
    const read = readDetail(ctx, detail, products);
    if ('code' in read) return read;
    if (productCode !== undefined && read.productCode !== productCode) return businessFailed('ACQ.INVALID_PARAMETER', '参数无效: every order_detail of a merge has the same product_code');
    productCode = read.productCode;
    subOrders.push(read.subOrder);
  }
  const existing = core.combined('alipay', combineNo);
  if (existing) {
    const refusal = notPayable(core, existing);
    if (refusal) return refusal;
  }
  try {
    return core.createCombined({
      channel: 'alipay',
      combineNo,
      subOrders,
      method: productCode!,
      notifyUrl: ctx.params.notify_url ?? '',
      ...(ctx.params.return_url ? { returnUrl: ctx.params.return_url } : {}),
      expires_at_ms,
      extra: { pre_order_no: newPreOrderNo() },
    });
  } catch (error) {
    if (!(error instanceof SandboxError)) throw error;
    if (error.code === 'trade_exists') return businessFailed('ACQ.CONTEXT_INCONSISTENT', `交易信息被篡改: ${error.message}`);
    return businessFailed('ACQ.INVALID_PARAMETER', `参数无效: ${error.message}`);
  }
}

function readDetail(ctx: ApiContext, detail: unknown, products: readonly string[]): { subOrder: SubOrder; productCode: string } | ApiBody {
  if (!isObject(detail)) return businessFailed('ACQ.INVALID_PARAMETER', '参数无效: order_details');
  // Each sub-order names its app; the sandbox knows the one app it was made for.
  if (detail.app_id !== ctx.params.app_id) return businessFailed('ACQ.INVALID_PARAMETER', '参数无效: order_details.app_id');
  const payNo = detail.out_trade_no;
  if (typeof payNo !== 'string' || payNo === '' || payNo.length > MAX_OUT_TRADE_NO_CHARS) return businessFailed('ACQ.INVALID_PARAMETER', '参数无效: order_details.out_trade_no');
  if (typeof detail.product_code !== 'string' || !products.includes(detail.product_code)) {
    return businessFailed('ACQ.INVALID_PARAMETER', `参数无效: order_details.product_code must be one of ${products.join(', ')}`);
  }
  const amount_fen = fenOf(detail.total_amount);
  if (amount_fen === undefined || amount_fen <= 0) return businessFailed('ACQ.INVALID_PARAMETER', '参数无效: order_details.total_amount');
  if (amount_fen > MAX_TRADE_FEN) return businessFailed('ACQ.TOTAL_FEE_EXCEED', '订单金额超过限额');
  if (typeof detail.subject !== 'string' || detail.subject === '') return businessFailed('ACQ.INVALID_PARAMETER', '参数无效: order_details.subject');
  const subMerchantId = readSubMerchant(detail, amount_fen);
  if (typeof subMerchantId === 'object') return subMerchantId;
  return {
    subOrder: { payNo, amount_fen, subject: detail.subject, ...(subMerchantId !== undefined ? { subMerchantId } : {}) },
    productCode: detail.product_code,
  };
}

/** time_expire (China time) or timeout_express (1m–15d), as the merge's latest moment to pay. */
function mergeExpiry(biz: Record<string, unknown>, now_ms: number): number | ApiBody {
  if (biz.time_expire !== undefined) {
    const at = parseChinaTime(biz.time_expire);
    if (at === undefined) return businessFailed('ACQ.INVALID_PARAMETER', '参数无效: time_expire');
    if (at <= now_ms) return businessFailed('ACQ.TRADE_HAS_CLOSE', '交易已经关闭');
    return at;
  }
  if (biz.timeout_express !== undefined) {
    const match = typeof biz.timeout_express === 'string' ? TIMEOUT_EXPRESS.exec(biz.timeout_express) : null;
    const span_ms = match ? Number(match[1]) * TIMEOUT_UNIT_MS[match[2] as keyof typeof TIMEOUT_UNIT_MS] : 0;
    if (span_ms < TIMEOUT_UNIT_MS.m || span_ms > MAX_TIMEOUT_EXPRESS_MS) return businessFailed('ACQ.INVALID_PARAMETER', '参数无效: timeout_express');
    return now_ms + span_ms;
  }
  return now_ms + DEFAULT_MERGE_EXPIRY_MS;
}

/** A merge whose sub-orders are not all waiting for the buyer: paid, or closed. */
function notPayable(core: SandboxCore, combined: SandboxCombined): ApiBody | undefined {
  const trades = core.tradesOf(combined);
  for (const trade of trades) closeIfExpired(core, trade);
  if (trades.some((trade) => trade.paid_at_ms !== undefined)) return businessFailed('ACQ.TRADE_HAS_SUCCESS', '交易已被支付');
  if (trades.length !== combined.payNos.length || trades.some((trade) => trade.state !== 'WAIT_BUYER_PAY')) return businessFailed('ACQ.TRADE_HAS_CLOSE', '交易已经关闭');
  return undefined;
}
