import { createHash } from 'node:crypto';
import type { Transaction } from 'kysely';
import { getActivity } from '../catalog/index.ts';
import { scheduleJob } from '../jobs/index.ts';
import { getOrder, recordOrderRefund, refundableLines } from '../orders/index.ts';

import { transaction } from '../platform/db/retry.ts';

import { affected, ignoreDuplicates, isUniqueViolation } from '../platform/db/sql.ts';
import { AppError, assert, isAppError } from '../platform/errors.ts';
import { slotOfOrderNo } from '../platform/shards.ts';
import { notifyUrl, type PaymentCentre } from './centre.ts';
import type { ChannelRefund } from './channels/types.ts';
import type { RefundReason } from './state.ts';
import { findPayment,
  sentAt, findRefund, mustShard, refundsOfPayment, shardOfNumber, updatePayment, updateRefund, type Payment, type Refund } from './store.ts';
import type { PaymentsShardDb, PaymentsShardTransaction } from './tables.ts';

/** Follows a refund the channel has not made final yet: asks again on this schedule, the last step repeating. */
export const REFUND_FOLLOW_JOB = 'payment.refund.follow';
const REFUND_FOLLOW_BACKOFF_MS = [10_000, 30_000, 60_000, 120_000, 300_000, 600_000, 1_800_000] as const;
/** About a day of asking; after that the refund waits for reconciliation and a person. */
export const MAX_REFUND_FOLLOW_ATTEMPTS = 60;
/** Most refunds one payment may have (partial refunds, line by line, and failed tries). */
export const MAX_REFUNDS_PER_PAYMENT = 100;
/** A lost compare-and-set on a payment is re-read and tried again at most this many times. */
const MAX_REFUND_RACE_ROUNDS = 8;

/** Refunds the order asked for change the order; the automatic ones return money the order never kept. */
const CHANGES_ORDER: ReadonlySet<RefundReason> = new Set(['buyer_request', 'admin', 'price_protection']);

class LostRace extends Error {}

/** An automatic refund's number: one per payment, so a repeat finds the first. */
export function automaticRefundNo(payNo: string): string {
  return `A${payNo.slice(1)}`;
}

/** A 价保 payout's number: one per order line. */
export function priceProtectionRefundNo(orderNo: string, lineNo: number): string {
  return `V${orderNo}`.slice(0, 24) + String(lineNo).padStart(3, '0');
}

export interface NewRefund {
  refundNo: string;
  amount_fen: number;
  reason: RefundReason;
  lineNos: number[] | null;
  requestKey: string | null;
  /** What the keyed request asked for (refundRequestHash); null for the system's own refunds. */
  requestHash?: string | null;
  requestedBy: string;
}

/**
 * Writes a refund against a payment inside the caller's transaction. The payment's committed
 * refunds go up in the same compare-and-set that serializes refunds of one payment, so refunds
 * never add up past the payment, and two refunds of one line cannot both pass.
 * Returns false when the refund number (or request key) exists already.
 */
export async function insertRefund(trx: PaymentsShardTransaction, payment: Payment, refund: NewRefund, now_ms: number): Promise<boolean> {
  assert(Number.isSafeInteger(refund.amount_fen) && refund.amount_fen > 0, 'refund amount must be a positive integer of fen');
  const inserted = await trx
    .insertInto('payment_refunds')
    .values({
      refund_no: refund.refundNo,
      pay_no: payment.payNo,
      order_no: payment.orderNo,
      channel: payment.channel,
      amount_fen: refund.amount_fen,
      reason: refund.reason,
      line_nos: refund.lineNos ? JSON.stringify(refund.lineNos) : null,
      request_key: refund.requestKey,
      request_hash: refund.requestHash ?? null,
      requested_by: refund.requestedBy,
      status: 'REQUESTED',
      version: 0,
      channel_refund_no: null,
      failure: null,
      created_at_ms: now_ms,
      updated_at_ms: now_ms,
      succeeded_at_ms: null,
    })
    .$call(ignoreDuplicates(trx))
    .executeTakeFirst();
  if (affected(inserted) === 0) return false;
  if (payment.refundCommitted_fen + refund.amount_fen > payment.amount_fen) {
    throw new AppError('refund_exceeds_paid', { details: { refundable_fen: payment.amount_fen - payment.refundCommitted_fen } });
  }
  const committed = await updatePayment(trx, payment, payment.status, { refund_committed_fen: payment.refundCommitted_fen + refund.amount_fen }, now_ms);
  if (!committed) throw new LostRace();
  await scheduleFollow(trx, payment.payNo, refund.refundNo, 0, now_ms);
  return true;
}

async function scheduleFollow(trx: PaymentsShardTransaction, payNo: string, refundNo: string, attempt: number, now_ms: number): Promise<void> {
  const delay_ms = REFUND_FOLLOW_BACKOFF_MS[Math.min(attempt, REFUND_FOLLOW_BACKOFF_MS.length - 1)]!;
  await scheduleJob(trx, { kind: REFUND_FOLLOW_JOB, key: `${REFUND_FOLLOW_JOB}:${refundNo}:${attempt}`, payload: { payNo, refundNo, attempt }, due_at_ms: now_ms + delay_ms }, now_ms);
}

/** Runs work against a fresh read of the payment, again when another writer changed it first. */
export async function withPayment<T>(db: PaymentsShardDb, payNo: string, work: (trx: PaymentsShardTransaction, payment: Payment) => Promise<T>): Promise<T> {
  for (let round = 0; round < MAX_REFUND_RACE_ROUNDS; round++) {
    try {
      return await transaction(db, async (trx) => {
        const payment = await findPayment(trx, payNo);
        if (!payment) throw new AppError('payment_not_found');
        return work(trx, payment);
      });
    } catch (error) {
      if (!(error instanceof LostRace)) throw error;
    }
  }
  throw new AppError('payment_state_conflict', { details: { payNo } });
}

export { LostRace };

export interface RefundRequest {
  orderNo: string;
  /** The lines to refund, or 'all' for every line not refunded yet. */
  lineNos: number[] | 'all';
  /** The caller's idempotency key: the same key returns the same refund. */
  requestKey: string;
  reason: 'buyer_request' | 'admin';
  requestedBy: string;
  /** A buyer may refund only their own order, and only within the refund policy. */
  asBuyer?: number;
}

/**
 * A refund of order lines (the whole order is every line), for the buyer within policy or
 * for an admin at any time. Each line returns its allocated payable less any 价保 paid on it.
 * The refund is written first, then the channel is asked; a channel that does not answer is
 * asked again by the follow job, with the same refund number.
 */
export async function requestRefund(centre: PaymentCentre, request: RefundRequest): Promise<Refund> {
  const { platform } = centre;
  const order = await getOrder(platform, request.orderNo, request.asBuyer);
  const db = platform.shards.forOrderNo(request.orderNo)!;
  const hash = refundRequestHash({ kind: 'lines', lineNos: request.lineNos === 'all' ? 'all' : [...new Set(request.lineNos)].sort((a, b) => a - b), reason: request.reason, requestedBy: request.requestedBy });
  const earlier = await refundOfRequest(db, request.orderNo, request.requestKey, hash);
  if (earlier) return (await findRefund(db, earlier))!;
  if (order.status !== 'PAID' || !order.paymentNo) throw new AppError('refund_not_allowed', { message: `An order that is ${order.status} cannot be refunded.` });
  if (order.paid_fen === 0) throw new AppError('refund_not_allowed', { message: 'Nothing was paid for this order, so nothing can be refunded.' });
  const lineNos = request.lineNos === 'all' ? order.lines.filter((l) => l.refunded_at_ms === null).map((l) => l.lineNo) : [...new Set(request.lineNos)];
  if (lineNos.length === 0) throw new AppError('refund_not_allowed', { message: 'Every line was refunded already.' });
  if (request.asBuyer !== undefined) await checkBuyerPolicy(centre, order.lines.filter((l) => lineNos.includes(l.lineNo)).map((l) => l.activityId));

  // Decided again on the payment's fresh read: the order read above may be from before another
  // request's refund of the same lines was written.
  return refundOnce(centre, db, order.paymentNo, { ...request, requestHash: hash }, async (trx, payment) => {
    const open = (await refundsOfPayment(trx, payment.payNo)).filter((r) => r.status !== 'FAILED');
    if (open.length >= MAX_REFUNDS_PER_PAYMENT) throw new AppError('refund_not_allowed', { message: 'This payment has too many refunds.' });
    // Every refund not failed holds its lines, succeeded or under way: a line is refunded once.
    const taken = open.flatMap((r) => r.lineNos ?? []);
    const clash = lineNos.find((n) => taken.includes(n));
    if (clash !== undefined) throw new AppError('refund_not_allowed', { message: `Line ${clash} was refunded already or has a refund under way.` });
    const lines = refundableLines(order, lineNos);
    // A line returns its payable less the 价保 paid out on it (a payout not failed), never more.
    const paidOut = (lineNo: number) => open.filter((r) => r.refundNo === priceProtectionRefundNo(order.orderNo, lineNo)).reduce((sum, r) => sum + r.amount_fen, 0);
    const amount_fen = lines.reduce((sum, l) => sum + l.payable_fen - paidOut(l.lineNo), 0);
    if (amount_fen <= 0) throw new AppError('refund_not_allowed', { message: 'Nothing is left to refund on these lines.' });
    return { amount_fen, reason: request.reason, lineNos };
  });
}

/**
 * An admin refunds what is left of a payment that did not pay its order (a duplicate, one for a
 * cancelled order, a mismatched amount): the way to try again when the automatic refund failed
 * at the channel. Idempotent by request key; the reason stays the payment's disposition.
 */
export async function refundUnappliedPayment(centre: PaymentCentre, request: { payNo: string; requestKey: string; requestedBy: string }): Promise<Refund> {
  const { platform } = centre;
  const db = mustShard(platform, request.payNo);
  const payment = await findPayment(db, request.payNo);
  if (!payment) throw new AppError('payment_not_found');
  const hash = refundRequestHash({ kind: 'unapplied_payment', payNo: payment.payNo, requestedBy: request.requestedBy });
  const earlier = await refundOfRequest(db, payment.orderNo, request.requestKey, hash);
  if (earlier) return (await findRefund(db, earlier))!;
  if (payment.disposition === null || payment.disposition === 'applied') {
    throw new AppError('refund_not_allowed', { message: 'This payment paid its order: refund the order’s lines instead.' });
  }
  const reason = payment.disposition;
  return refundOnce(centre, db, payment.payNo, { orderNo: payment.orderNo, requestKey: request.requestKey, requestHash: hash, requestedBy: request.requestedBy }, async (_trx, current) => {
    const amount_fen = current.amount_fen - current.refundCommitted_fen;
    if (amount_fen <= 0) throw new AppError('refund_not_allowed', { message: 'Everything paid is refunded or being refunded.' });
    return { amount_fen, reason, lineNos: null };
  });
}

/**
 * Writes the refund a request asks for, once per request key, then asks the channel. `decide`
 * runs on a fresh read of the payment inside the transaction that writes the refund; a
 * repeat of the key (sent again, or twice at once) gets the refund the first one wrote.
 */
async function refundOnce(
  centre: PaymentCentre,
  db: PaymentsShardDb,
  payNo: string,
  request: { orderNo: string; requestKey: string; requestHash: string; requestedBy: string },
  decide: (trx: PaymentsShardTransaction, payment: Payment) => Promise<Pick<NewRefund, 'amount_fen' | 'reason' | 'lineNos'>>,
): Promise<Refund> {
  const { platform } = centre;
  const newRefundNo = `R${platform.nextOrderNo(slotOfOrderNo(request.orderNo)!, platform.now())}`;
  let refundNo: string | undefined;
  try {
    refundNo = await withPayment(db, payNo, async (trx, payment) => {
      const same = await refundOfRequest(trx, request.orderNo, request.requestKey, request.requestHash);
      if (same) return same;
      const refund = { ...(await decide(trx, payment)), refundNo: newRefundNo, requestKey: request.requestKey, requestHash: request.requestHash, requestedBy: request.requestedBy };
      // Not written: the same key's refund was committed by a request running beside this one.
      return (await insertRefund(trx, payment, refund, platform.now())) ? newRefundNo : undefined;
    });
  } catch (error) {
    if (!isUniqueViolation(error)) throw error;
  }
  refundNo ??= await refundOfRequest(db, request.orderNo, request.requestKey, request.requestHash);
  if (!refundNo) throw new AppError('payment_state_conflict', { details: { payNo } });
  platform.wake();
  return driveRefund(centre, payNo, refundNo);
}

/**
 * The refund an earlier request with this key wrote, if any. The same key with another request
 * (other lines, another payment, another caller) is `idempotency_key_reused`, as at checkout.
 */
async function refundOfRequest(db: PaymentsShardDb | PaymentsShardTransaction, orderNo: string, requestKey: string, requestHash: string): Promise<string | undefined> {
  const row = await db
    .selectFrom('payment_refunds')
    .select(['refund_no', 'request_hash'])
    .where('order_no', '=', orderNo)
    .where('request_key', '=', requestKey)
    .executeTakeFirst();
  if (row && row.request_hash !== null && row.request_hash !== requestHash) throw new AppError('idempotency_key_reused', { field: 'Idempotency-Key' });
  return row?.refund_no;
}

/** The hash of what a keyed refund request asks for (its lines as sent, or the payment, and who asks). */
function refundRequestHash(request: Record<string, unknown>): string {
  return createHash('sha256').update(JSON.stringify(request)).digest('hex');
}

/** 截单: after an activity's order cut-off the merchant has bought for the group, so a buyer can no longer refund by themselves. */
async function checkBuyerPolicy(centre: PaymentCentre, activityIds: number[]): Promise<void> {
  for (const id of new Set(activityIds)) {
    const activity = await getActivity(centre.platform.db, id);
    if (activity && centre.platform.now() >= activity.order_cutoff_at_ms) {
      throw new AppError('refund_not_allowed', { message: 'The activity has passed its order cut-off; ask the platform for a refund.' });
    }
  }
}

/**
 * Moves a refund on: a refund never sent is sent (again: the channel keys it by refund number),
 * one being processed is queried, and the answer is applied. A channel that does not answer
 * leaves the refund as it is for the follow job.
 */
export async function driveRefund(centre: PaymentCentre, payNo: string, refundNo: string): Promise<Refund> {
  const db = mustShard(centre.platform, payNo);
  const refund = await findRefund(db, refundNo);
  if (!refund) throw new AppError('refund_not_found');
  if (refund.status === 'SUCCEEDED' || refund.status === 'FAILED') return refund;
  const channel = centre.channels.get(refund.channel);
  if (!channel) throw new AppError('channel_not_configured', { details: { channel: refund.channel } });
  const payment = (await findPayment(db, payNo))!;
  let answer: ChannelRefund;
  try {
    answer =
      refund.status === 'REQUESTED'
        ? await channel.refund({
            payNo,
            channelTradeNo: payment.channelTradeNo ?? undefined,
            refundNo,
            amount_fen: refund.amount_fen,
            total_fen: payment.amount_fen,
            reason: refund.reason,
            notifyUrl: notifyUrl(centre, refund.channel),
            // A sub-payment of a combined payment is refunded as its own trade, under its merchant.
            ...sentAt(payment),
            requested_at_ms: refund.created_at_ms,
          })
        : await channel.queryRefund(payNo, refundNo, { ...sentAt(payment), requested_at_ms: refund.created_at_ms });
  } catch (error) {
    if (isAppError(error, 'channel_refused')) {
      answer = { payNo, refundNo, state: 'failed', failure: error.message.slice(0, 250) };
    } else if (isAppError(error, 'channel_unavailable')) {
      centre.platform.log.warn({ payNo, refundNo, err: error }, 'refund not final: the channel did not answer; the follow job asks again');
      return refund;
    } else throw error;
  }
  await applyRefundResult(centre, answer);
  return (await findRefund(db, refundNo))!;
}

/**
 * Applies what the channel says of a refund (from a notification, a query or the refund call),
 * once: succeeded adds to the payment's refunded amount and, for refunds the order asked for,
 * records it on the order in the same transaction; failed gives the amount back to what
 * may still be refunded.
 */
export async function applyRefundResult(centre: PaymentCentre, answer: ChannelRefund): Promise<'applied' | 'unchanged' | 'unknown'> {
  const db = mustShard(centre.platform, answer.payNo);
  const known = await findRefund(db, answer.refundNo);
  if (!known || known.payNo !== answer.payNo) return 'unknown';
  if (answer.state === 'not_found' && known.status === 'REQUESTED') {
    // The channel never got it (we stopped between writing and asking): ask now.
    await driveRefund(centre, answer.payNo, answer.refundNo);
    return 'applied';
  }
  if (answer.state === 'not_found') return 'unchanged';
  const now_ms = centre.platform.now();
  return withPayment(db, answer.payNo, async (trx, payment) => {
    const refund = (await findRefund(trx, answer.refundNo))!;
    if (refund.status === 'SUCCEEDED' || refund.status === 'FAILED') return 'unchanged';
    if (answer.state === 'processing') {
      if (refund.status !== 'REQUESTED') return 'unchanged';
      if (!(await updateRefund(trx, refund, 'PROCESSING', { channel_refund_no: answer.channelRefundNo ?? null }, now_ms))) throw new LostRace();
      return 'applied';
    }
    if (answer.state === 'failed' || answer.state === 'closed') {
      if (!(await updateRefund(trx, refund, 'FAILED', { failure: (answer.failure ?? answer.state).slice(0, 250) }, now_ms))) throw new LostRace();
      const released = await updatePayment(trx, payment, payment.status, { refund_committed_fen: payment.refundCommitted_fen - refund.amount_fen }, now_ms);
      if (!released) throw new LostRace();
      centre.platform.log.warn({ payNo: refund.payNo, refundNo: refund.refundNo, failure: answer.failure }, 'refund failed at the channel');
      return 'applied';
    }
    const succeeded_at_ms = answer.succeeded_at_ms ?? now_ms;
    if (!(await updateRefund(trx, refund, 'SUCCEEDED', { channel_refund_no: answer.channelRefundNo ?? null, succeeded_at_ms }, now_ms))) throw new LostRace();
    const refunded_fen = payment.refunded_fen + refund.amount_fen;
    assert(refunded_fen <= payment.refundCommitted_fen, () => `refunds of ${payment.payNo} pass what was committed`);
    const to = refunded_fen === payment.amount_fen ? 'REFUNDED' : 'PARTLY_REFUNDED';
    if (!(await updatePayment(trx, payment, to, { refunded_fen }, now_ms))) throw new LostRace();
    if (CHANGES_ORDER.has(refund.reason)) {
      await recordOrderRefund(trx, refund.orderNo, { refundNo: refund.refundNo, reason: refund.reason, lineNos: refund.lineNos, amount_fen: refund.amount_fen }, now_ms);
    }
    return 'applied';
  }).then((outcome) => {
    centre.platform.wake();
    return outcome;
  });
}

/**
 * 价保 payout: the claimed amount goes back to the order's payment as a refund of its own
 * (one per line, by number), changing no line. An order paid outside the payment centre has
 * no payment here to refund from: that is logged for a person, not retried for ever.
 */
export async function payPriceProtection(centre: PaymentCentre, claim: { orderNo: string; lineNo: number; amount_fen: number; paymentNo: string | null }): Promise<void> {
  if (claim.amount_fen <= 0) return;
  const db = claim.paymentNo ? shardOfNumber(centre.platform, claim.paymentNo) : undefined;
  const payment = db && (await findPayment(db, claim.paymentNo!));
  if (!db || !payment) {
    centre.platform.log.error({ orderNo: claim.orderNo, lineNo: claim.lineNo, amount_fen: claim.amount_fen }, 'price protection claimed on an order whose payment is not in the payment centre; pay it out by hand');
    return;
  }
  const refundNo = priceProtectionRefundNo(claim.orderNo, claim.lineNo);
  const payable = await withPayment(db, payment.payNo, async (trx, current) => {
    // A line refunded (or being refunded) returns its whole payable less the payouts made before
    // it, so a payout after it would pay the line twice. Decided under the payment's version, as line refunds are.
    const lineRefund = (await refundsOfPayment(trx, current.payNo)).find((r) => r.status !== 'FAILED' && r.lineNos?.includes(claim.lineNo));
    if (lineRefund && !(await findRefund(trx, refundNo))) return false;
    await insertRefund(trx, current, { refundNo, amount_fen: claim.amount_fen, reason: 'price_protection', lineNos: null, requestKey: null, requestedBy: 'system' }, centre.platform.now());
    return true;
  });
  if (!payable) {
    centre.platform.log.warn({ orderNo: claim.orderNo, lineNo: claim.lineNo, amount_fen: claim.amount_fen }, 'price protection not paid out: the line was refunded in full first');
    return;
  }
  await driveRefund(centre, payment.payNo, refundNo);
}

/** The follow job: drives the refund and, while it is still open, comes back later. */
export async function followRefund(centre: PaymentCentre, payload: { payNo: string; refundNo: string; attempt: number }): Promise<void> {
  const refund = await driveRefund(centre, payload.payNo, payload.refundNo);
  if (refund.status === 'SUCCEEDED' || refund.status === 'FAILED') return;
  if (payload.attempt + 1 >= MAX_REFUND_FOLLOW_ATTEMPTS) {
    centre.platform.log.error({ payNo: payload.payNo, refundNo: payload.refundNo }, 'refund still open after a day of asking; reconciliation and a person must look');
    return;
  }
  const db = mustShard(centre.platform, payload.payNo);
  await transaction(db, (trx) => scheduleFollow(trx, payload.payNo, payload.refundNo, payload.attempt + 1, centre.platform.now()));
}
