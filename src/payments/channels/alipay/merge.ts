import type { AlipaySdk } from 'alipay-sdk';
import { AppError, assert } from '../../../platform/errors.ts';
import { assertFen } from '../../../platform/money.ts';
import type { ChannelTrade, CombinedSubOrder, CreateCombinedRequest, PayAction, PayMethod } from '../types.ts';
import { refused, subjectOf, subMerchantFields, SUCCESS, text, type Answer } from './answers.ts';
import { chinaTime, fenToYuan } from './format.ts';

/**
 * Alipay's merge pay (统一收单合并支付, 合并支付) with 直付通 secondary merchants: one payment by the
 * buyer over one sub-order per merchant, each with its own `sub_merchant` (smid) and `settle_info`.
 * H5 and the app go through `alipay.trade.merge.precreate` (→ pre_order_no), then
 * `alipay.trade.wap.merge.pay` or `alipay.trade.app.merge.pay`; the desktop page is
 * `alipay.trade.page.merge.pay`, which takes the sub-orders itself. out_merge_no is our combined
 * number: with it Alipay holds the sub-orders to the contracted all-or-nothing option
 * (同时支付成功或者同时支付失败). Afterwards every sub-order is an ordinary trade with its own
 * trade_no, queried, closed and refunded by its out_trade_no (combined-payment-facts §3).
 */

/**
 * The most sub-orders one merge carries. Alipay publishes no limit (facts §3; one integrator caps
 * at 6 as its own choice), so we take 10, the smallest limit any channel publishes for the same
 * product (WeChat's direct-merchant combined payment): a checkout then splits the same way
 * whichever channel pays it, and a community group-buying cart rarely spans more merchants. Raise
 * it when Alipay's contract states a larger one.
 */
export const MAX_MERGE_SUB_ORDERS = 10;

/**
 * The ways to pay a merge. Alipay's merge pay has a desktop page, an H5 page and an app form, and
 * no scan-to-pay form (there is no merge counterpart of alipay.trade.precreate's qr_code), so 'qr'
 * is refused rather than faked with the H5 link in a QR code, which would send a desktop buyer's
 * phone to a mobile web page Alipay did not make for scanning.
 */
export const COMBINED_METHODS: readonly PayMethod[] = ['page', 'h5', 'app'];

const PRODUCT_CODE: Record<'page' | 'h5' | 'app', string> = { page: 'FAST_INSTANT_TRADE_PAY', h5: 'QUICK_WAP_WAY', app: 'QUICK_MSECURITY_PAY' };
const MINUTE_MS = 60_000;
/** timeout_express (the page merge's only expiry) runs from 1m to 15d, in whole minutes. */
const MAX_TIMEOUT_EXPRESS_MINUTES = 15 * 24 * 60;

export interface MergeGateway {
  appId: string;
  now: () => number;
  sdk(): Promise<AlipaySdk>;
  /** The common parameters every request is stamped with. */
  common(): Record<string, string>;
  call(method: string, bizContent: Record<string, unknown>, extra?: Record<string, string>): Promise<Answer>;
  query(payNo: string): Promise<ChannelTrade>;
  close(payNo: string): Promise<'closed' | 'already_paid' | 'not_found'>;
}

export function alipayMerge(gateway: MergeGateway) {
  async function create(request: CreateCombinedRequest): Promise<PayAction> {
    const method = request.method;
    if (method !== 'page' && method !== 'h5' && method !== 'app') {
      throw new AppError('pay_method_not_supported', {
        message: `Alipay pays a combined payment by ${COMBINED_METHODS.join(', ')} only; it has no QR form for merge pay.`,
        details: { channel: 'alipay', method, combinedMethods: COMBINED_METHODS },
      });
    }
    if (request.expires_at_ms <= gateway.now()) throw new AppError('order_not_payable', { message: 'The payment has expired before it was opened.' });
    checkSubOrders(request.subOrders);
    const orderDetails = request.subOrders.map((subOrder) => ({
      app_id: gateway.appId,
      out_trade_no: subOrder.payNo,
      product_code: PRODUCT_CODE[method],
      total_amount: fenToYuan(subOrder.amount_fen),
      subject: subjectOf(subOrder.subject),
      // A marketplace merchant's sub-order is paid to its smid; the platform's own (自营) to the platform.
      ...subMerchantFields(subOrder.subMerchantId, subOrder.amount_fen),
    }));
    const urls: Record<string, string> = { ...gateway.common(), notify_url: request.notifyUrl };
    if (request.returnUrl) urls.return_url = request.returnUrl;
    const sdk = await gateway.sdk();
    if (method === 'page') {
      const bizContent = { out_merge_no: request.combineNo, timeout_express: timeoutExpress(request.expires_at_ms, gateway.now()), order_details: orderDetails };
      return { kind: 'form', html: sdk.pageExec('alipay.trade.page.merge.pay', 'POST', { bizContent, ...urls }) };
    }
    const preOrderNo = await precreate(request, orderDetails);
    if (method === 'h5') return { kind: 'redirect', url: sdk.pageExec('alipay.trade.wap.merge.pay', 'GET', { bizContent: { pre_order_no: preOrderNo }, ...urls }) };
    // The app hands this signed order string to the Alipay client SDK as it is.
    return { kind: 'sdk_params', params: { orderStr: sdk.sdkExec('alipay.trade.app.merge.pay', { ...gateway.common(), bizContent: { pre_order_no: preOrderNo }, notify_url: request.notifyUrl }) } };
  }

  /** The pre-order the H5 and app merge pay open; the same out_merge_no with the same sub-orders is the same pre-order. */
  async function precreate(request: CreateCombinedRequest, orderDetails: Record<string, unknown>[]): Promise<string> {
    const bizContent = { out_merge_no: request.combineNo, time_expire: chinaTime(request.expires_at_ms), order_details: orderDetails };
    const answer = await gateway.call('alipay.trade.merge.precreate', bizContent, { notify_url: request.notifyUrl });
    if (answer.code !== SUCCESS) throw refused('alipay.trade.merge.precreate', answer);
    // Without the all-or-nothing option Alipay may take some sub-orders and not others; we never pay such a merge.
    const results = Array.isArray(answer.order_detail_results) ? (answer.order_detail_results as Array<Record<string, unknown>>) : [];
    const failed = results.filter((result) => result.success !== true && result.success !== 'true');
    if (failed.length > 0) {
      throw new AppError('channel_refused', {
        message: `Alipay refused sub-orders of ${request.combineNo}: ${failed.map((result) => `${String(result.out_trade_no)} ${String(result.result_code)}`).join(', ')}`.slice(0, 500),
        details: { channel: 'alipay', method: 'alipay.trade.merge.precreate', failed: failed.map((result) => ({ out_trade_no: result.out_trade_no, result_code: result.result_code })) },
      });
    }
    const preOrderNo = text(answer, 'pre_order_no');
    if (!preOrderNo) throw new AppError('channel_unavailable', { message: 'Alipay merge.precreate answered without pre_order_no' });
    return preOrderNo;
  }

  /** Each sub-order is a trade of its own at Alipay, asked by its out_trade_no; there is no merge query. */
  async function query(_combineNo: string, subOrders: readonly CombinedSubOrder[]): Promise<ChannelTrade[]> {
    assert(subOrders.length <= MAX_MERGE_SUB_ORDERS, `a merge has at most ${MAX_MERGE_SUB_ORDERS} sub-orders`);
    return Promise.all(subOrders.map((subOrder) => gateway.query(subOrder.payNo)));
  }

  /**
   * Alipay has no merge close: each sub-order is closed by its out_trade_no, one after another so
   * a paid merge stops the round at its first sub-order (the all-or-nothing option pays all or none).
   */
  async function close(_combineNo: string, subOrders: readonly CombinedSubOrder[]): Promise<'closed' | 'already_paid' | 'not_found'> {
    assert(subOrders.length >= 1 && subOrders.length <= MAX_MERGE_SUB_ORDERS, `a merge has 1 to ${MAX_MERGE_SUB_ORDERS} sub-orders`);
    let found = false;
    for (const subOrder of subOrders) {
      const outcome = await gateway.close(subOrder.payNo);
      if (outcome === 'already_paid') return 'already_paid';
      if (outcome === 'closed') found = true;
    }
    // None known: the precreate never reached Alipay (or the page was never opened).
    return found ? 'closed' : 'not_found';
  }

  return { create, query, close };
}

/** The payment centre sends 1 to maxSubOrders sub-orders, each more than 0 and numbered once: anything else is our bug. */
function checkSubOrders(subOrders: readonly CombinedSubOrder[]): void {
  assert(subOrders.length >= 1 && subOrders.length <= MAX_MERGE_SUB_ORDERS, () => `a merge has 1 to ${MAX_MERGE_SUB_ORDERS} sub-orders, not ${subOrders.length}`);
  assert(new Set(subOrders.map((subOrder) => subOrder.payNo)).size === subOrders.length, 'a sub-order number appears twice in one merge');
  for (const subOrder of subOrders) assert(assertFen(subOrder.amount_fen, 'sub-order amount') > 0, `sub-order ${subOrder.payNo} is empty`);
}

/** The page merge knows only a span, in whole minutes, rounded down so Alipay stops no later than we do. */
function timeoutExpress(expires_at_ms: number, now_ms: number): string {
  const minutes = Math.floor((expires_at_ms - now_ms) / MINUTE_MS);
  if (minutes < 1) throw new AppError('order_not_payable', { message: 'Less than a minute is left to pay; Alipay merge pay takes no shorter span.' });
  return `${Math.min(minutes, MAX_TIMEOUT_EXPRESS_MINUTES)}m`;
}
