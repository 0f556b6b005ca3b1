import { scheduleJob } from '../jobs/index.ts';
import { getOrder } from '../orders/index.ts';
import { transaction } from '../platform/db/retry.ts';
import { isUniqueViolation } from '../platform/db/sql.ts';
import { AppError, isAppError } from '../platform/errors.ts';
import { slotOfOrderNo } from '../platform/shards.ts';
import { notifyUrl, PAYMENT_QUERY_JOB, type PaymentCentre } from './centre.ts';
import type { ChannelName, PayMethod } from './channels/types.ts';
import { applyToOrder, applyTradeResult } from './results.ts';
import { PAID_STATUSES } from './state.ts';
import { findPayment, mustShard, paymentsOfOrder, updatePayment, type Payment } from './store.ts';

export { PAYMENT_QUERY_JOB };
/** A buyer takes some seconds to scan and pay, and the notification usually follows at once: the first query waits for both. */
export const PAYMENT_QUERY_BACKOFF_MS = [15_000, 15_000, 30_000, 60_000, 120_000, 300_000] as const;
/** After the order's payment time is up, the channel gets this long before we close the trade there. */
export const CLOSE_GRACE_MS = 60_000;
/** Most payment attempts one order may have (channel switches, new QR codes). */
export const MAX_PAYMENT_ATTEMPTS = 20;
/** Racing starts for one order are decided again at most this many times. */
const MAX_START_ROUNDS = 5;
const MAX_SUBJECT_LENGTH = 120;

export interface StartPayment {
  orderNo: string;
  channel: ChannelName;
  method: PayMethod;
  /** The buyer starting it; someone else's order is not found. */
  asBuyer?: number;
  payerId?: string;
  payerIp?: string;
  returnUrl?: string;
}

/**
 * Starts paying an order: one payment order per attempt, expiring with the order. The same
 * channel and method again returns the open attempt (a second tap shows the same QR code);
 * another channel or method first closes the open attempt at its channel, so the buyer can
 * never pay two open trades — and if the old one turns out paid, the order is paid by it.
 */
export async function startPayment(centre: PaymentCentre, request: StartPayment): Promise<Payment> {
  const { platform } = centre;
  const channel = centre.channels.get(request.channel);
  if (!channel) throw new AppError('channel_not_configured', { field: 'channel', details: { configured: [...centre.channels.keys()] } });
  if (!channel.methods.includes(request.method)) throw new AppError('pay_method_not_supported', { field: 'method', details: { methods: channel.methods } });
  const health = centre.breakers.health(request.channel, platform.now());
  if (!health.available) {
    const others = centre.breakers.all(platform.now()).filter((h) => h.available && h.channel !== request.channel).map((h) => h.channel);
    throw new AppError('channel_down', {
      field: 'channel',
      message: `${request.channel} keeps failing and is out of the cashier for now${others.length ? `; pay with ${others.join(' or ')}` : ''}.`,
      details: { channel: request.channel, reason: health.reason, probeAt: new Date(health.probe_at_ms!).toISOString(), available: others },
    });
  }
  const order = await getOrder(platform, request.orderNo, request.asBuyer);
  const db = platform.shards.forOrderNo(order.orderNo)!;
  // A payment of 0 fen is no payment (the payments table refuses one): such an order is paid at checkout.
  if (order.payable_fen === 0) throw new AppError('nothing_payable', { details: { status: order.status } });

  for (let round = 0; round < MAX_START_ROUNDS; round++) {
    if (order.status !== 'PENDING_PAYMENT' || platform.now() >= order.expires_at_ms) notPayable(order.status);
    const attempts = await paymentsOfOrder(db, order.orderNo);
    if (attempts.some((a) => PAID_STATUSES.includes(a.status))) notPayable('PAID');
    const open = attempts.find((a) => a.status === 'CREATED');
    if (open && open.channel === request.channel && open.method === request.method && open.action) return open;
    if (open) {
      await closeAttempt(centre, open);
      continue;
    }
    if (attempts.length >= MAX_PAYMENT_ATTEMPTS) throw new AppError('order_not_payable', { message: 'This order has had too many payment attempts.' });

    const now_ms = platform.now();
    const payNo = `P${platform.nextOrderNo(slotOfOrderNo(order.orderNo)!, now_ms)}`;
    try {
      await transaction(db, async (trx) => {
        await trx
          .insertInto('payment_orders')
          .values({
            pay_no: payNo,
            order_no: order.orderNo,
            buyer_id: order.buyerId,
            channel: request.channel,
            method: request.method,
            amount_fen: order.payable_fen,
            currency: order.currency,
            status: 'CREATED',
            version: 0,
            open_order_no: order.orderNo,
            channel_trade_no: null,
            pay_action: null,
            disposition: null,
            refund_committed_fen: 0,
            refunded_fen: 0,
            finished: 0,
            expires_at_ms: order.expires_at_ms,
            created_at_ms: now_ms,
            updated_at_ms: now_ms,
            succeeded_at_ms: null,
            closed_at_ms: null,
          })
          .execute();
        await scheduleQuery(trx, payNo, 0, now_ms);
      });
    } catch (error) {
      // Another start for this order opened its attempt first: close it and go again.
      if (isUniqueViolation(error)) continue;
      throw error;
    }

    const subject = `tuangou ${order.orderNo}: ${order.lines.map((l) => l.title).join(', ')}`.slice(0, MAX_SUBJECT_LENGTH);
    try {
      const action = await channel.create({
        payNo,
        amount_fen: order.payable_fen,
        subject,
        expires_at_ms: order.expires_at_ms,
        method: request.method,
        notifyUrl: notifyUrl(centre, request.channel),
        returnUrl: request.returnUrl,
        payerId: request.payerId,
        payerIp: request.payerIp,
        requested_at_ms: now_ms,
      });
      centre.breakers.succeeded(request.channel);
      const created = (await findPayment(db, payNo))!;
      if (created.status === 'CREATED') await updatePayment(db, created, 'CREATED', { pay_action: JSON.stringify(action) }, platform.now());
      else if (created.status === 'CLOSED') {
        // Another start closed this attempt before the channel had it: close the trade just made
        // there too, so nothing payable is left behind that no query follows.
        await channel.close(payNo, { requested_at_ms: now_ms }).catch((error: unknown) => platform.log.warn({ payNo, err: error }, 'could not close a superseded trade; a payment on it is refunded as a duplicate'));
        throw new AppError('payment_state_conflict', { message: 'Another payment attempt for this order replaced this one.', details: { payNo } });
      }
      return (await findPayment(db, payNo))!;
    } catch (error) {
      // Refused: this attempt is over. Unreachable: the channel may have the trade, so it stays
      // open for the query job to decide, and the buyer may try again (which closes it first).
      if (isAppError(error, 'channel_unavailable')) centre.breakers.failed(request.channel, error.message, platform.now());
      if (isAppError(error, 'channel_refused')) {
        centre.breakers.succeeded(request.channel);
        const failed = (await findPayment(db, payNo))!;
        if (failed.status === 'CREATED') await updatePayment(db, failed, 'FAILED', { closed_at_ms: platform.now() }, platform.now());
      }
      throw error;
    }
  }
  throw new AppError('payment_state_conflict', { details: { orderNo: order.orderNo } });
}

function notPayable(status: string): never {
  throw new AppError('order_not_payable', { details: { status } });
}

async function scheduleQuery(trx: Parameters<typeof scheduleJob>[0], payNo: string, attempt: number, now_ms: number): Promise<void> {
  const delay_ms = PAYMENT_QUERY_BACKOFF_MS[Math.min(attempt, PAYMENT_QUERY_BACKOFF_MS.length - 1)]!;
  await scheduleJob(trx, { kind: PAYMENT_QUERY_JOB, key: `${PAYMENT_QUERY_JOB}:${payNo}:${attempt}`, payload: { payNo, attempt }, due_at_ms: now_ms + delay_ms }, now_ms);
}

/**
 * Closes an open attempt at its channel, then here. A trade the channel says is paid is
 * recorded as a success instead (the order decides what it is).
 */
export async function closeAttempt(centre: PaymentCentre, payment: Payment): Promise<'closed' | 'paid'> {
  const channel = centre.channels.get(payment.channel);
  if (!channel) throw new AppError('channel_not_configured', { details: { channel: payment.channel } });
  const sent = { requested_at_ms: payment.created_at_ms };
  const answer = await channel.close(payment.payNo, sent);
  if (answer === 'already_paid') {
    await applyTradeResult(centre, await channel.query(payment.payNo, sent));
    return 'paid';
  }
  const db = mustShard(centre.platform, payment.payNo);
  const current = (await findPayment(db, payment.payNo))!;
  if (current.status === 'CREATED') await updatePayment(db, current, 'CLOSED', { closed_at_ms: centre.platform.now() }, centre.platform.now());
  return 'closed';
}

/**
 * 超时取消 or a buyer's cancel: the order's open attempts are closed at their channels, so a late
 * payment cannot succeed silently; one the channel says is paid is recorded, and refunded as
 * the cancelled order's. An order has at most MAX_PAYMENT_ATTEMPTS attempts.
 */
export async function closeOpenAttempts(centre: PaymentCentre, orderNo: string): Promise<void> {
  const db = centre.platform.shards.forOrderNo(orderNo);
  if (!db) return;
  for (const attempt of await paymentsOfOrder(db, orderNo)) {
    if (attempt.status === 'CREATED') await closeAttempt(centre, attempt);
  }
}

/**
 * The active query (补单) of one open payment: a success found here is handled exactly like a
 * notification; an attempt past the order's time is closed at the channel; otherwise ask again later.
 */
export async function followPayment(centre: PaymentCentre, payload: { payNo: string; attempt: number }): Promise<void> {
  const db = mustShard(centre.platform, payload.payNo);
  const payment = await findPayment(db, payload.payNo);
  if (!payment) return;
  if (payment.status !== 'CREATED') {
    if (PAID_STATUSES.includes(payment.status) && payment.disposition === null) await applyToOrder(centre, payment.payNo);
    return;
  }
  const channel = centre.channels.get(payment.channel);
  if (!channel) throw new AppError('channel_not_configured', { details: { channel: payment.channel } });
  let decided = false;
  try {
    const trade = await channel.query(payment.payNo, { requested_at_ms: payment.created_at_ms });
    if (trade.state === 'succeeded' || trade.state === 'closed' || trade.state === 'failed') {
      await applyTradeResult(centre, trade);
      decided = true;
    } else if (centre.platform.now() >= payment.expires_at_ms + CLOSE_GRACE_MS) {
      await closeAttempt(centre, payment);
      decided = true;
    }
  } catch (error) {
    if (!isAppError(error, 'channel_unavailable')) throw error;
    centre.platform.log.warn({ payNo: payment.payNo, err: error }, 'payment query: the channel did not answer; asking again later');
  }
  if (!decided) await transaction(db, (trx) => scheduleQuery(trx, payment.payNo, payload.attempt + 1, centre.platform.now()));
}
