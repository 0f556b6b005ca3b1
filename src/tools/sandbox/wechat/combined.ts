import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { cashierUrl } from '../module.ts';
import { SandboxError, type SandboxCombined, type SandboxRefund, type SandboxTrade } from '../trades.ts';
import { openid, refundBody, rfc3339, subOrderBody, TRADE_TYPES, type MerchantIds } from './bodies.ts';
import { parseBody, wechatError } from './http.ts';
import { parseExpiry, type RouteContext } from './routes.ts';

/**
 * 合单支付 as the platform (服务商 / 平台收付通) plays it: create, query and close by
 * combine_out_trade_no, and the sub-order refunds of /v3/ecommerce/refunds. Each sub-order is a
 * core trade of its own, paid all at once with its siblings (core.payCombined).
 */

/** "目前最多一次可支持50笔订单" for 服务商 / 平台收付通 (PWX wiki/doc/apiv3_partner/apis/chapter7_3_4.shtml). */
export const MAX_SANDBOX_SUB_ORDERS = 50;
/** No close within a minute of creation (api_external FAQ chapter1_1_7). */
export const MIN_AGE_BEFORE_CLOSE_MS = 60_000;
/** 1000万 yuan per sub-order. */
const MAX_SUB_ORDER_FEN = 1_000_000_000;

const OUT_NO = /^[0-9A-Za-z_\-|*@]+$/;
const MCHID = /^\d{1,32}$/;

const subOrderSchema = z.object({
  mchid: z.string().min(1).max(32),
  sub_mchid: z.string().regex(MCHID, 'sub_mchid 必填'),
  sub_appid: z.string().max(32).optional(),
  attach: z.string().min(1).max(128),
  amount: z.object({ total_amount: z.number().int().positive().max(MAX_SUB_ORDER_FEN), currency: z.literal('CNY') }),
  out_trade_no: z.string().min(2).max(32).regex(OUT_NO),
  description: z.string().min(1).max(127),
  goods_tag: z.string().max(32).optional(),
  detail: z.string().max(6000).optional(),
  settle_info: z.object({ profit_sharing: z.boolean().optional(), subsidy_amount: z.number().int().nonnegative().optional() }).strict().optional(),
});

const combinedOrderSchema = z.object({
  combine_appid: z.string().min(1).max(32),
  combine_mchid: z.string().min(1).max(32),
  combine_out_trade_no: z.string().min(2).max(32).regex(OUT_NO),
  scene_info: z.object({
    device_id: z.string().max(32).optional(),
    payer_client_ip: z.string().min(1).max(45),
    h5_info: z.object({ type: z.enum(['iOS', 'Android', 'Wap']) }).passthrough().optional(),
  }),
  sub_orders: z.array(subOrderSchema).min(1).max(MAX_SANDBOX_SUB_ORDERS),
  combine_payer_info: z.object({ openid: z.string().min(1).max(128), sub_openid: z.string().max(128).optional() }).optional(),
  time_start: z.string().optional(),
  time_expire: z.string().optional(),
  notify_url: z.string().url().max(256),
  limit_pay: z.array(z.string()).optional(),
});

const combinedCloseSchema = z.object({
  combine_appid: z.string().min(1).max(32),
  sub_orders: z
    .array(z.object({ mchid: z.string().min(1).max(32), out_trade_no: z.string().min(1).max(32), sub_mchid: z.string().min(1).max(32), sub_appid: z.string().max(32).optional() }))
    .min(1)
    .max(MAX_SANDBOX_SUB_ORDERS),
});

const ecommerceRefundSchema = z.object({
  sub_mchid: z.string().regex(MCHID),
  sp_appid: z.string().min(1).max(32),
  sub_appid: z.string().max(32).optional(),
  transaction_id: z.string().min(1).max(32).optional(),
  out_trade_no: z.string().min(1).max(32).optional(),
  out_refund_no: z.string().min(1).max(64).regex(/^[0-9A-Za-z_\-|*@]+$/),
  reason: z.string().max(80).optional(),
  amount: z.object({ refund: z.number().int().positive(), total: z.number().int().positive(), currency: z.literal('CNY') }).passthrough(),
  notify_url: z.string().url().max(256).optional(),
  refund_account: z.enum(['REFUND_SOURCE_SUB_MERCHANT', 'REFUND_SOURCE_PARTNER_ADVANCE']).optional(),
  funds_account: z.string().optional(),
});

/** The combine query answer and the notice's resource: the combined payment, then each sub-order as a trade of its own. */
export function combinedBody(combined: SandboxCombined, trades: readonly SandboxTrade[], ids: MerchantIds): Record<string, unknown> {
  // The payer is known once someone paid: the JSAPI openid given, or the one who scanned.
  const first = trades[0];
  const payer = first?.paid_at_ms !== undefined ? openid(first) : combined.extra.openid;
  return {
    combine_appid: ids.appId,
    combine_mchid: ids.mchId,
    combine_out_trade_no: combined.combineNo,
    scene_info: { device_id: '' },
    sub_orders: trades.map((trade) => subOrderBody(trade, ids)),
    ...(payer !== undefined ? { combine_payer_info: { openid: payer } } : {}),
  };
}

export function combinedRoutes({ core, keys, ids, base, route }: RouteContext): void {
  route('POST', '/v3/combine-transactions/:kind', (request, raw) => {
    const kind = (request.params as { kind: string }).kind;
    const tradeType = TRADE_TYPES[kind];
    if (!tradeType) throw wechatError(404, 'NOT_FOUND', '无效的请求路径');
    const order = parseBody(combinedOrderSchema, raw);
    if (order.combine_mchid !== keys.mchId) throw wechatError(400, 'MCH_NOT_EXISTS', '合单发起方商户号不存在');
    if (order.combine_appid !== keys.appId) throw wechatError(400, 'APPID_MCHID_NOT_MATCH', 'combine_appid和combine_mchid不匹配');
    for (const sub of order.sub_orders) {
      if (sub.mchid !== keys.mchId) throw wechatError(400, 'PARAM_ERROR', '子单发起方商户号须为合单发起方商户号');
      // 服务商模式不支持发起方和参与方是同一个商户号.
      if (sub.sub_mchid === keys.mchId) throw wechatError(400, 'INVALID_REQUEST', '不支持发起方和参与方是同一个商户号');
    }
    if (kind === 'jsapi' && !order.combine_payer_info) throw wechatError(400, 'PARAM_ERROR', '输入源"/body/combine_payer_info/openid"必填性规则校验失败');
    if (kind === 'h5' && !order.scene_info.h5_info) throw wechatError(400, 'PARAM_ERROR', '输入源"/body/scene_info/h5_info"必填性规则校验失败');
    const existing = core.combined('wechat', order.combine_out_trade_no);
    if (existing) {
      const trades = core.tradesOf(existing);
      if (trades.some((trade) => trade.paid_at_ms !== undefined)) throw wechatError(400, 'ORDERPAID', '该订单已支付');
      if (trades.some((trade) => trade.state === 'CLOSED')) throw wechatError(400, 'ORDER_CLOSED', '订单已关闭');
      const sameSettlement = order.sub_orders.every((sub, index) => trades[index]?.extra.profit_sharing === String(sub.settle_info?.profit_sharing ?? false));
      if (trades.length === order.sub_orders.length && !sameSettlement) throw wechatError(400, 'INVALID_REQUEST', '重复下单且结算信息不一致');
    }
    const { combined, trades } = core.createCombined({
      channel: 'wechat',
      combineNo: order.combine_out_trade_no,
      subOrders: order.sub_orders.map((sub) => ({ payNo: sub.out_trade_no, amount_fen: sub.amount.total_amount, subject: sub.description, subMerchantId: sub.sub_mchid })),
      method: tradeType,
      notifyUrl: order.notify_url,
      expires_at_ms: parseExpiry(order.time_expire, core.now()),
      extra: { prepay_id: existing?.extra.prepay_id ?? `wx${randomBytes(16).toString('hex').slice(0, 30)}`, ...(order.combine_payer_info ? { openid: order.combine_payer_info.openid } : {}) },
    });
    if (!existing) {
      order.sub_orders.forEach((sub, index) => {
        const trade = trades[index]!;
        trade.extra = { ...trade.extra, attach: sub.attach, profit_sharing: String(sub.settle_info?.profit_sharing ?? false) };
      });
    }
    const cashier = cashierUrl(base(), 'wechat', combined.combineNo);
    if (kind === 'native') return { status: 200, body: { code_url: cashier } };
    if (kind === 'h5') return { status: 200, body: { h5_url: `${cashier}?prepay_id=${combined.extra.prepay_id}` } };
    return { status: 200, body: { prepay_id: combined.extra.prepay_id } };
  });

  route('GET', '/v3/combine-transactions/out-trade-no/:no', (request) => {
    const combined = core.combined('wechat', (request.params as { no: string }).no);
    if (!combined) throw wechatError(404, 'ORDER_NOT_EXIST', '订单不存在');
    return { status: 200, body: combinedBody(combined, core.tradesOf(combined), ids) };
  });

  route('POST', '/v3/combine-transactions/out-trade-no/:no/close', (request, raw) => {
    const input = parseBody(combinedCloseSchema, raw);
    if (input.combine_appid !== keys.appId) throw wechatError(400, 'APPID_MCHID_NOT_MATCH', 'combine_appid有误');
    const combined = core.combined('wechat', (request.params as { no: string }).no);
    if (!combined) throw wechatError(404, 'ORDER_NOT_EXIST', '订单不存在');
    // The same mchid, numbers, count and merchants as at creation ("传了10笔子单,关单时传3笔子单会怎样? A:会关单失败").
    const trades = core.tradesOf(combined);
    const listed = new Map(input.sub_orders.map((sub) => [sub.out_trade_no, sub]));
    const same =
      listed.size === input.sub_orders.length &&
      listed.size === trades.length &&
      trades.every((trade) => listed.get(trade.payNo)?.sub_mchid === trade.subMerchantId && listed.get(trade.payNo)?.mchid === keys.mchId);
    if (!same) throw wechatError(400, 'PARAM_ERROR', '子单信息与下单时不一致');
    if (core.now() - combined.created_at_ms < MIN_AGE_BEFORE_CLOSE_MS) throw wechatError(400, 'INVALID_REQUEST', '订单创建1分钟内不允许关单');
    let outcome: ReturnType<typeof core.closeCombined>;
    try {
      outcome = core.closeCombined('wechat', combined.combineNo, trades.map((trade) => trade.payNo));
    } catch (error) {
      if (error instanceof SandboxError && error.code === 'sub_orders_differ') throw wechatError(400, 'PARAM_ERROR', '子单信息与下单时不一致');
      throw error;
    }
    if (outcome === 'not_found') throw wechatError(404, 'ORDER_NOT_EXIST', '订单不存在');
    if (outcome === 'already_paid') throw wechatError(400, 'ORDERPAID', '订单已支付');
    return { status: 204 };
  });
}

/** A 平台收付通 refund: the apply answer (accepted, no status yet) and the query answer. */
function ecommerceRefundAnswer(refund: SandboxRefund): Record<string, unknown> {
  return {
    refund_id: refund.channelRefundNo,
    out_refund_no: refund.refundNo,
    create_time: rfc3339(refund.created_at_ms),
    refund_account: 'REFUND_SOURCE_SUB_MERCHANT',
    amount: { refund: refund.amount_fen, from: [], payer_refund: refund.amount_fen, discount_refund: 0, currency: 'CNY' },
    promotion_detail: [],
  };
}

export function ecommerceRefundRoutes({ core, keys, route }: RouteContext): void {
  route('POST', '/v3/ecommerce/refunds/apply', (_request, raw) => {
    const input = parseBody(ecommerceRefundSchema, raw);
    if (input.sp_appid !== keys.appId) throw wechatError(400, 'APPID_MCHID_NOT_MATCH', 'sp_appid和服务商商户号不匹配');
    const found = input.out_trade_no ? core.trade('wechat', input.out_trade_no) : input.transaction_id ? core.tradeByChannelNo('wechat', input.transaction_id) : undefined;
    // A trade of another merchant, or the platform's own direct trade, is not this sub-merchant's.
    const trade = found?.subMerchantId === input.sub_mchid ? found : undefined;
    if (!trade) throw wechatError(404, 'RESOURCE_NOT_EXISTS', '订单不存在');
    if (input.amount.total !== trade.amount_fen) throw wechatError(400, 'PARAM_ERROR', '订单金额与原订单不一致');
    const existing = trade.refunds.find((r) => r.refundNo === input.out_refund_no);
    if (existing && existing.amount_fen !== input.amount.refund) throw wechatError(400, 'INVALID_REQUEST', '退款单号重复，且与首次请求的退款金额不一致');
    const refund = core.refund('wechat', trade.payNo, { refundNo: input.out_refund_no, amount_fen: input.amount.refund, reason: input.reason, notifyUrl: input.notify_url });
    // The core only announces refunds that went through; WeChat also tells of one that failed.
    if (!existing && refund.state === 'FAILED') core.renotify({ kind: 'refunded', trade, refund });
    return { status: 200, body: ecommerceRefundAnswer(refund) };
  });

  route('GET', '/v3/ecommerce/refunds/out-refund-no/:no', (request) => {
    const subMchid = (request.query as Record<string, string | undefined>).sub_mchid;
    if (!subMchid) throw wechatError(400, 'PARAM_ERROR', '输入源"/query/sub_mchid"必填性规则校验失败');
    const found = core.findRefund('wechat', (request.params as { no: string }).no);
    if (!found || found.trade.subMerchantId !== subMchid) throw wechatError(404, 'RESOURCE_NOT_EXISTS', '退款单不存在');
    const { amount: _full, ...body } = refundBody(found.trade, found.refund);
    return { status: 200, body: { ...body, refund_account: 'REFUND_SOURCE_SUB_MERCHANT', amount: { refund: found.refund.amount_fen, payer_refund: found.refund.amount_fen, discount_refund: 0, currency: 'CNY' } } };
  });
}
