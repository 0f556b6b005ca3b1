import { z } from 'zod';
import { AppError } from '../../../platform/errors.ts';
import type { ChannelRefund, ChannelTrade, CombinedSubOrder, CreateCombinedRequest, RefundRequest } from '../types.ts';
import { read, toTrade, type transactionSchema } from './answers.ts';
import { unavailable } from './http.ts';
import { chinaRfc3339 } from './protocol.ts';
import type { WechatSettings } from './settings.ts';

/**
 * 合单支付 (combine-transactions) and the sub-order refunds of 平台收付通 (/v3/ecommerce/refunds),
 * in the partner form: the platform (服务商) is combine_mchid and every sub-order's mchid, each
 * merchant its sub_mchid, so each sub-order's money lands in that merchant's account (no 二清).
 * Field names as in WeChat's partner docs (combined-payment-facts.md §1).
 */

/**
 * 平台收付通 / 服务商 combine: "目前最多一次可支持50笔订单" (PWX wiki/doc/apiv3_partner/apis/chapter7_3_4.shtml).
 * (直连普通商户 would be 2–10; we combine as the platform, so 50.)
 */
export const MAX_WECHAT_SUB_ORDERS = 50;
/** WeChat refuses to close a combined payment within a minute of its creation (api_external FAQ chapter1_1_7). */
export const MIN_COMBINED_AGE_BEFORE_CLOSE_MS = 60_000;
/** attach is required on every sub-order (≤128); we echo our sub-payment number, which a reader of WeChat's console recognises. */
const MAX_ATTACH_CHARS = 128;
const MAX_DESCRIPTION_CHARS = 127;
const MAX_REFUND_REASON_CHARS = 80;

const fen = z.number().int().nonnegative();

/** One sub_order of a combine query answer or a combined payment notice. */
export const subOrderSchema = z.object({
  mchid: z.string(),
  sub_mchid: z.string().optional(),
  out_trade_no: z.string(),
  transaction_id: z.string().optional(),
  trade_state: z.string(),
  success_time: z.string().optional(),
  amount: z.object({ total_amount: fen.optional() }).optional(),
});

export const combinedSchema = z.object({
  combine_appid: z.string().optional(),
  combine_mchid: z.string(),
  combine_out_trade_no: z.string(),
  sub_orders: z.array(subOrderSchema).min(1).max(MAX_WECHAT_SUB_ORDERS),
});

/** The apply answer carries no status (WeChat accepts a refund first); the query and the notice say how it went. */
export const ecommerceRefundAnswerSchema = z.object({ refund_id: z.string(), out_refund_no: z.string(), amount: z.object({ refund: fen }) });

export const ecommerceRefundQuerySchema = z.object({
  refund_id: z.string(),
  out_refund_no: z.string(),
  out_trade_no: z.string(),
  status: z.string(),
  success_time: z.string().optional(),
  amount: z.object({ refund: fen }),
});

/**
 * The sub_mchid a sub-order is paid under. A sub-order without a merchant is the platform's own
 * goods (自营): the partner form has no sub-order without sub_mchid, and the platform's own mchid
 * may not be one ("不支持发起方和参与方是同一个商户号"), so the platform's self-operated store is
 * onboarded as a sub-merchant of its own and named in the settings; without one, such a sub-order
 * cannot be paid through WeChat combined payments.
 */
export function subMchidOf(subMerchantId: string | undefined, settings: Pick<WechatSettings, 'selfOperatedSubMchId'>): string {
  if (subMerchantId !== undefined) return subMerchantId;
  if (settings.selfOperatedSubMchId) return settings.selfOperatedSubMchId;
  throw new AppError('channel_not_configured', {
    message: 'WeChat Pay combined payments need a sub_mchid for the platform’s own goods (WECHATPAY_SELF_OPERATED_SUB_MCH_ID)',
    details: { channel: 'wechat', reason: 'self_operated_sub_mchid_missing' },
  });
}

function cut(text: string, max: number): string {
  return Array.from(text).slice(0, max).join('');
}

export function checkSubOrders(subOrders: readonly CombinedSubOrder[]): void {
  if (subOrders.length === 0 || subOrders.length > MAX_WECHAT_SUB_ORDERS) {
    throw new AppError('invalid_field', { field: 'subOrders', message: `a WeChat combined payment carries 1 to ${MAX_WECHAT_SUB_ORDERS} sub-orders`, details: { count: subOrders.length, max: MAX_WECHAT_SUB_ORDERS } });
  }
  for (const sub of subOrders) {
    if (!Number.isSafeInteger(sub.amount_fen) || sub.amount_fen <= 0) throw new AppError('invalid_field', { field: 'subOrders.amount_fen', details: { payNo: sub.payNo } });
  }
  if (new Set(subOrders.map((sub) => sub.payNo)).size !== subOrders.length) throw new AppError('invalid_field', { field: 'subOrders.payNo', message: 'a sub-order number appears twice' });
}

/** The body of POST /v3/combine-transactions/{native|jsapi|h5|app}. */
export function combinedOrderBody(request: CreateCombinedRequest, settings: WechatSettings, payerIpPlaceholder: string): Record<string, unknown> {
  const body: Record<string, unknown> = {
    combine_appid: settings.appId,
    combine_mchid: settings.mchId,
    combine_out_trade_no: request.combineNo,
    scene_info: {
      payer_client_ip: request.payerIp ?? payerIpPlaceholder,
      ...(request.method === 'h5' ? { h5_info: { type: 'Wap' } } : {}),
    },
    sub_orders: request.subOrders.map((sub) => ({
      mchid: settings.mchId,
      sub_mchid: subMchidOf(sub.subMerchantId, settings),
      out_trade_no: sub.payNo,
      attach: cut(sub.payNo, MAX_ATTACH_CHARS),
      amount: { total_amount: sub.amount_fen, currency: 'CNY' },
      description: cut(sub.subject, MAX_DESCRIPTION_CHARS),
      // Each merchant's money stays frozen in its own account until 分账 or 完结 releases it.
      settle_info: { profit_sharing: true },
    })),
    time_expire: chinaRfc3339(request.expires_at_ms),
    notify_url: request.notifyUrl,
  };
  if (request.method === 'jsapi') body.combine_payer_info = { openid: request.payerId };
  return body;
}

/** The body of POST /v3/combine-transactions/out-trade-no/{no}/close: exactly the sub-orders it was made with. */
export function combinedCloseBody(subOrders: readonly CombinedSubOrder[], settings: WechatSettings): Record<string, unknown> {
  return {
    combine_appid: settings.appId,
    sub_orders: subOrders.map((sub) => ({ mchid: settings.mchId, out_trade_no: sub.payNo, sub_mchid: subMchidOf(sub.subMerchantId, settings) })),
  };
}

/** A sub_order in our words; its amount is total_amount where a single trade says total. */
export function toSubOrderTrade(sub: z.infer<typeof subOrderSchema>, fail: (reason: string) => Error): ChannelTrade {
  const transaction: z.infer<typeof transactionSchema> = {
    mchid: sub.mchid,
    out_trade_no: sub.out_trade_no,
    trade_state: sub.trade_state,
    ...(sub.transaction_id !== undefined ? { transaction_id: sub.transaction_id } : {}),
    ...(sub.success_time !== undefined ? { success_time: sub.success_time } : {}),
    ...(sub.amount?.total_amount !== undefined ? { amount: { total: sub.amount.total_amount } } : {}),
  };
  return toTrade(transaction, fail);
}

/**
 * Every asked sub-order's trade from a combine answer, in the order asked. An answer that is for
 * another combined payment or merchant, or that misses or adds a sub-order, is not believed.
 */
export function tradesOfCombined(answer: z.infer<typeof combinedSchema>, combineNo: string, subOrders: readonly CombinedSubOrder[], mchId: string, fail: (reason: string) => Error): ChannelTrade[] {
  if (answer.combine_out_trade_no !== combineNo) throw fail(`answered for combined payment ${answer.combine_out_trade_no}`);
  if (answer.combine_mchid !== mchId || answer.sub_orders.some((sub) => sub.mchid !== mchId)) throw fail('for another merchant');
  const byPayNo = new Map(answer.sub_orders.map((sub) => [sub.out_trade_no, sub]));
  if (byPayNo.size !== answer.sub_orders.length || byPayNo.size !== subOrders.length) throw fail('the sub-orders answered are not the ones asked');
  return subOrders.map((asked) => {
    const sub = byPayNo.get(asked.payNo);
    if (!sub) throw fail(`sub-order ${asked.payNo} missing from the answer`);
    return toSubOrderTrade(sub, fail);
  });
}

/** Every trade of a combined payment notice (合单支付通知), as WeChat sends one callback for all sub-orders. */
export function combinedNoticeTrades(resource: z.infer<typeof combinedSchema>, mchId: string, fail: (reason: string) => Error): ChannelTrade[] {
  if (resource.combine_mchid !== mchId || resource.sub_orders.some((sub) => sub.mchid !== mchId)) throw fail('for another merchant');
  if (new Set(resource.sub_orders.map((sub) => sub.out_trade_no)).size !== resource.sub_orders.length) throw fail('a sub-order appears twice');
  return resource.sub_orders.map((sub) => toSubOrderTrade(sub, fail));
}

/** The body of POST /v3/ecommerce/refunds/apply: the sub-order's own trade, under its merchant, never the combine number. */
export function ecommerceRefundBody(request: RefundRequest, settings: WechatSettings): Record<string, unknown> {
  return {
    sub_mchid: subMchidOf(request.subMerchantId, settings),
    sp_appid: settings.appId,
    out_trade_no: request.payNo,
    out_refund_no: request.refundNo,
    reason: cut(request.reason, MAX_REFUND_REASON_CHARS) || undefined,
    amount: { refund: request.amount_fen, total: request.total_fen, currency: 'CNY' },
    notify_url: request.notifyUrl,
  };
}

export function ecommerceRefundAccepted(body: unknown, request: RefundRequest): ChannelRefund {
  const answer = read(ecommerceRefundAnswerSchema, body, 'ecommerce refund');
  if (answer.out_refund_no !== request.refundNo) throw unavailable('refund answered for another refund number');
  return { payNo: request.payNo, refundNo: answer.out_refund_no, state: 'processing', channelRefundNo: answer.refund_id, amount_fen: answer.amount.refund };
}
