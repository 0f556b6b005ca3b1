import { randomBytes } from 'node:crypto';
import type { ChannelNotifier } from '../notifications.ts';
import type { SandboxEvent, SandboxTrade } from '../trades.ts';
import { rsa2Sign, signContent, chinaTime, yuan } from './protocol.ts';
import { ALIPAY_STATUS, buyerOf } from './trade-api.ts';

/**
 * Alipay's asynchronous notification (trade_status_sync): a form POST, signed with Alipay's
 * private key over every field but sign and sign_type, sorted and joined raw. Only the
 * exact body `success` ends the retries: 4m, 10m, 10m, 1h, 2h, 6h, 15h after the first try.
 * A paid merge (合并支付) is notified per sub-order, each an ordinary TRADE_SUCCESS for its own
 * out_trade_no and trade_no: Alipay documents no merge notification, and each sub-order is a trade
 * of its own (combined-payment-facts §3).
 */

const MINUTE_MS = 60_000;
export const ALIPAY_RETRY_SCHEDULE_MS = [4, 10, 10, 60, 120, 360, 900].map((m) => m * MINUTE_MS);

export function alipayNotifier(keys: { appId: string; sellerId: string; alipayPrivateKeyPem: string }, now: () => number): ChannelNotifier {
  // One notify_id per event, kept across its retries as Alipay keeps it.
  const notifyIds = new WeakMap<SandboxEvent, string>();
  return {
    retrySchedule_ms: ALIPAY_RETRY_SCHEDULE_MS,
    acknowledged: (answer) => answer.status === 200 && answer.body === 'success',
    separately: (event) => (event.kind === 'combined_paid' ? event.trades.map((trade) => ({ kind: 'paid', trade })) : [event]),
    build(event, { misSign }) {
      if (!event.trade.notifyUrl) return undefined;
      let notifyId = notifyIds.get(event);
      if (!notifyId) notifyIds.set(event, (notifyId = `${chinaTime(now()).replace(/\D/g, '').slice(0, 8)}${randomBytes(12).toString('hex')}`));
      const fields = notificationFields(event, keys, notifyId, now());
      const content = signContent(fields, ['sign', 'sign_type']);
      // A spoiled signature is a real signature over other content, as a forger's would be.
      fields.sign = rsa2Sign(misSign ? `${content}&spoiled=1` : content, keys.alipayPrivateKeyPem);
      return {
        url: event.trade.notifyUrl,
        headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' },
        body: new URLSearchParams(fields).toString(),
      };
    },
  };
}

/** The fields for the trade's state as of the event. No field is ever sent empty: the SDK would sign it as `k=`. */
function notificationFields(event: SandboxEvent, keys: { appId: string; sellerId: string }, notifyId: string, now_ms: number): Record<string, string> {
  const trade = event.trade;
  const fields: Record<string, string> = {
    notify_type: 'trade_status_sync',
    notify_id: notifyId,
    notify_time: chinaTime(now_ms),
    app_id: keys.appId,
    auth_app_id: keys.appId,
    charset: 'utf-8',
    version: '1.0',
    sign_type: 'RSA2',
    trade_no: trade.tradeNo,
    out_trade_no: trade.payNo,
    subject: trade.subject,
    seller_id: keys.sellerId,
    gmt_create: chinaTime(trade.created_at_ms),
    total_amount: yuan(trade.amount_fen),
  };
  if (event.kind === 'closed') {
    return { ...fields, trade_status: 'TRADE_CLOSED', gmt_close: chinaTime(trade.closed_at_ms ?? now_ms) };
  }
  Object.assign(fields, paidFields(trade));
  // A merge's event is sent per sub-order (separately); asked for it whole, the first sub-order's notice stands for it.
  if (event.kind === 'paid' || event.kind === 'combined_paid') return { ...fields, trade_status: 'TRADE_SUCCESS' };
  if (event.kind === 'finished') {
    const refunded = refundedUpTo(trade, undefined);
    return { ...fields, trade_status: ALIPAY_STATUS.FINISHED, gmt_close: chinaTime(now_ms), ...(refunded > 0 ? { refund_fee: yuan(refunded) } : {}) };
  }
  // A refund: refund_fee is the total refunded as of this refund; the last one closes the trade.
  const refunded = refundedUpTo(trade, event.refund.refundNo);
  const full = refunded === trade.amount_fen;
  const refundAt = event.refund.succeeded_at_ms ?? now_ms;
  return {
    ...fields,
    trade_status: full ? 'TRADE_CLOSED' : 'TRADE_SUCCESS',
    refund_fee: yuan(refunded),
    gmt_refund: chinaTime(refundAt, true),
    out_biz_no: event.refund.refundNo,
    ...(full ? { gmt_close: chinaTime(refundAt) } : {}),
  };
}

function paidFields(trade: SandboxTrade): Record<string, string> {
  const amount = yuan(trade.amount_fen);
  const buyer = buyerOf(trade.tradeNo);
  return {
    buyer_id: buyer.buyer_user_id,
    buyer_logon_id: buyer.buyer_logon_id,
    gmt_payment: chinaTime(trade.paid_at_ms!),
    receipt_amount: amount,
    buyer_pay_amount: amount,
    invoice_amount: amount,
    point_amount: '0.00',
    fund_bill_list: JSON.stringify([{ amount, fundChannel: 'ALIPAYACCOUNT' }]),
  };
}

/** Refunded in total by the refunds that succeeded up to and including refundNo (all of them when undefined). */
function refundedUpTo(trade: SandboxTrade, refundNo: string | undefined): number {
  let total = 0;
  for (const r of trade.refunds) {
    if (r.state === 'SUCCESS') total += r.amount_fen;
    if (r.refundNo === refundNo) break;
  }
  return total;
}
