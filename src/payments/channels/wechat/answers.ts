import { z } from 'zod';
import { AppError } from '../../../platform/errors.ts';
import type { ChannelRefund, ChannelTrade, RefundState, TradeState } from '../types.ts';
import { unavailable, type WechatReply } from './http.ts';
import { parseRfc3339 } from './protocol.ts';

/** The shapes WeChat answers and notifies in, and their translation to our words. */

const fen = z.number().int().nonnegative();

export const transactionSchema = z.object({
  mchid: z.string().optional(),
  /** The partner form's (a merchant's trade made by the platform): sp_mchid is ours, sub_mchid the merchant's. */
  sp_mchid: z.string().optional(),
  sub_mchid: z.string().optional(),
  out_trade_no: z.string(),
  transaction_id: z.string().optional(),
  trade_state: z.string(),
  success_time: z.string().optional(),
  amount: z.object({ total: fen.optional() }).optional(),
});

export const refundSchema = z.object({
  refund_id: z.string(),
  out_refund_no: z.string(),
  out_trade_no: z.string(),
  status: z.string(),
  success_time: z.string().optional(),
  amount: z.object({ refund: fen, total: fen }),
});

/**
 * A refund notification's resource names its state refund_status, not status. A direct merchant's
 * names it mchid; a sub-merchant's (平台收付通 refunds) names the platform sp_mchid beside sub_mchid.
 */
export const refundNoticeSchema = refundSchema
  .omit({ status: true })
  .extend({ mchid: z.string().optional(), sp_mchid: z.string().optional(), sub_mchid: z.string().optional(), refund_status: z.string() });

export const prepaySchema = z.object({ prepay_id: z.string().min(1) });
export const codeUrlSchema = z.object({ code_url: z.string().min(1) });
export const h5UrlSchema = z.object({ h5_url: z.string().min(1) });
export const billAnswerSchema = z.object({ hash_type: z.string(), hash_value: z.string(), download_url: z.string() });

const errorSchema = z.object({ code: z.string(), message: z.string().optional() });

export const TRADE_STATES: Readonly<Record<string, TradeState>> = {
  SUCCESS: 'succeeded',
  // 转入退款: paid, then refunded in part or in full; refunds are followed on their own.
  REFUND: 'succeeded',
  NOTPAY: 'pending',
  USERPAYING: 'pending',
  // 已接收，等待扣款: combine sub-orders only (partner release notes, 2021-01).
  ACCEPT: 'pending',
  CLOSED: 'closed',
  REVOKED: 'closed',
  PAYERROR: 'failed',
};

export const REFUND_STATES: Readonly<Record<string, RefundState>> = {
  SUCCESS: 'succeeded',
  PROCESSING: 'processing',
  ABNORMAL: 'failed',
  CLOSED: 'closed',
};

export function read<T>(schema: z.ZodType<T>, body: unknown, what: string): T {
  const parsed = schema.safeParse(body);
  if (!parsed.success) throw unavailable(`unexpected ${what} answer`, { issue: parsed.error.issues[0]?.message, path: parsed.error.issues[0]?.path.join('.') });
  return parsed.data;
}

export function errorCode(reply: WechatReply): string | undefined {
  const parsed = errorSchema.safeParse(reply.body);
  return parsed.success ? parsed.data.code : undefined;
}

/** A verified non-success answer: a refusal we must not retry blindly, or a transient failure we may. */
export function refusal(reply: WechatReply): AppError {
  const parsed = errorSchema.safeParse(reply.body);
  if (!parsed.success) return unavailable('unknown answer', { status: reply.status });
  const details = { channel: 'wechat', status: reply.status, code: parsed.data.code, message: parsed.data.message };
  if (reply.status >= 500 || reply.status === 429) return unavailable(`${parsed.data.code} ${parsed.data.message ?? ''}`.trim(), details);
  return new AppError('channel_refused', { message: `WeChat Pay refused: ${parsed.data.code} ${parsed.data.message ?? ''}`.trim(), details });
}

export function toTrade(t: z.infer<typeof transactionSchema>, fail: (reason: string) => Error): ChannelTrade {
  const state = TRADE_STATES[t.trade_state];
  if (!state) throw fail(`unknown trade_state ${t.trade_state}`);
  const trade: ChannelTrade = { payNo: t.out_trade_no, state };
  if (t.transaction_id) trade.channelTradeNo = t.transaction_id;
  if (t.amount?.total !== undefined) trade.amount_fen = t.amount.total;
  if (state === 'succeeded') {
    const paid_at_ms = t.success_time === undefined ? undefined : parseRfc3339(t.success_time);
    if (paid_at_ms === undefined || !t.transaction_id || t.amount?.total === undefined) throw fail('a paid trade without success_time, transaction_id or amount');
    trade.paid_at_ms = paid_at_ms;
  }
  return trade;
}

export function toRefund(
  r: { refund_id: string; out_refund_no: string; out_trade_no: string; success_time?: string; amount: { refund: number } },
  status: string,
  fail: (reason: string) => Error,
): ChannelRefund {
  const state = REFUND_STATES[status];
  if (!state) throw fail(`unknown refund status ${status}`);
  const refund: ChannelRefund = { payNo: r.out_trade_no, refundNo: r.out_refund_no, state, channelRefundNo: r.refund_id, amount_fen: r.amount.refund };
  if (state === 'succeeded') {
    const succeeded_at_ms = r.success_time === undefined ? undefined : parseRfc3339(r.success_time);
    if (succeeded_at_ms === undefined) throw fail('a succeeded refund without success_time');
    refund.succeeded_at_ms = succeeded_at_ms;
  }
  if (state === 'failed' || state === 'closed') refund.failure = `refund ${status}`;
  return refund;
}
