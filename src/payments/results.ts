import { cancelJob, cancelJobs, scheduleJob } from '../jobs/index.ts';
import { paymentSucceeded } from '../orders/index.ts';
import type { Transaction } from 'kysely';
import { transaction } from '../platform/db/retry.ts';

import { AppError, isAppError } from '../platform/errors.ts';
import { PAYMENT_QUERY_JOB, type PaymentCentre } from './centre.ts';
import type { ChannelTrade } from './channels/types.ts';
import { automaticRefundNo, driveRefund, insertRefund, LostRace, withPayment } from './refunds.ts';
import type { Disposition } from './state.ts';
import { findPayment, refundsOfPayment, shardOfNumber, updatePayment, type Payment } from './store.ts';
import type { PaymentsShardTransaction } from './tables.ts';

/**
 * Safety net for a success recorded but not yet taken to the order (a crash in between):
 * this job does it, and does nothing when the inline path got there first.
 */
export const PAYMENT_APPLY_JOB = 'payment.apply';
/** The key of a payment's apply job: one per payment, so scheduling it twice is one job. */
export const applyJobKey = (payNo: string): string => `${PAYMENT_APPLY_JOB}:${payNo}`;
const APPLY_SAFETY_DELAY_MS = 30_000;
/** A lost compare-and-set on a payment is re-read and decided again at most this many times. */
const MAX_SUCCESS_RACE_ROUNDS = 8;

export type TradeResultOutcome = 'unknown_payment' | 'applied' | 'unchanged';

/**
 * What a channel says of a trade — from a verified notification or our own query, handled
 * the same way, any number of times, in any order. A success is recorded once and taken to
 * the order; a later success of a payment we had closed is still a success (the channel holds
 * the money) and the order decides whether it pays or is refunded.
 */
export async function applyTradeResult(centre: PaymentCentre, trade: ChannelTrade): Promise<TradeResultOutcome> {
  const db = shardOfNumber(centre.platform, trade.payNo);
  const payment = db && (await findPayment(db, trade.payNo));
  if (!db || !payment) return 'unknown_payment';
  switch (trade.state) {
    case 'succeeded': {
      const outcome = await recordSuccess(centre, payment, trade);
      if (trade.finished && !payment.finished) await markFinished(centre, payment.payNo);
      if (trade.refunded_fen !== undefined && trade.refunded_fen > payment.refunded_fen) await followOpenRefunds(centre, payment.payNo);
      return outcome;
    }
    case 'closed':
    case 'failed': {
      if (payment.status !== 'CREATED') return 'unchanged';
      const to = trade.state === 'closed' ? 'CLOSED' : 'FAILED';
      const moved = await updatePayment(db, payment, to, { closed_at_ms: centre.platform.now() }, centre.platform.now());
      return moved ? 'applied' : applyTradeResult(centre, trade);
    }
    default:
      return 'unchanged';
  }
}

async function recordSuccess(centre: PaymentCentre, first: Payment, trade: ChannelTrade): Promise<TradeResultOutcome> {
  const db = shardOfNumber(centre.platform, first.payNo)!;
  if (trade.amount_fen !== undefined && trade.amount_fen !== first.amount_fen) {
    // The channel took another amount than we asked: never ship on it. It is refunded as a mismatch.
    centre.platform.log.error({ payNo: first.payNo, asked_fen: first.amount_fen, taken_fen: trade.amount_fen }, 'channel reports a different amount');
  } else if (first.status === 'CREATED' && (await payInOneCommit(centre, first, trade))) {
    return 'applied';
  }
  let recorded = false;
  for (let round = 0; round < MAX_SUCCESS_RACE_ROUNDS; round++) {
    const payment = (await findPayment(db, first.payNo))!;
    const mismatch = trade.amount_fen !== undefined && trade.amount_fen !== payment.amount_fen;
    if (payment.status === 'CREATED' || payment.status === 'CLOSED' || payment.status === 'FAILED') {
      const now_ms = centre.platform.now();
      const changes = { channel_trade_no: trade.channelTradeNo ?? payment.channelTradeNo, succeeded_at_ms: trade.paid_at_ms ?? now_ms };
      const moved = await transaction(db, async (trx) => {
        // Another amount is decided in this commit: nothing read later (the apply job, the active
        // query) knows the channel's amount, and would take it to the order as a payment.
        const won = await updatePayment(trx, payment, 'SUCCEEDED', mismatch ? { ...changes, disposition: 'amount_mismatch' } : changes, now_ms);
        if (!won) return false;
        await cancelQueryJobs(trx, payment.payNo);
        if (mismatch) {
          const after = { ...payment, status: 'SUCCEEDED' as const, version: payment.version + 1 };
          const refund = { refundNo: automaticRefundNo(payment.payNo), amount_fen: payment.amount_fen - payment.refundCommitted_fen, reason: 'amount_mismatch' as const };
          await insertRefund(trx, after, { ...refund, lineNos: null, requestKey: null, requestedBy: 'system' }, now_ms);
        } else {
          await scheduleJob(trx, { kind: PAYMENT_APPLY_JOB, key: applyJobKey(payment.payNo), payload: { payNo: payment.payNo }, due_at_ms: now_ms + APPLY_SAFETY_DELAY_MS }, now_ms);
        }
        return true;
      });
      if (!moved) continue;
      recorded = true;
      if (mismatch) {
        centre.platform.log.warn({ payNo: payment.payNo, orderNo: payment.orderNo }, 'payment succeeded for another amount than asked: refunding it in full');
        await driveRefund(centre, payment.payNo, automaticRefundNo(payment.payNo));
        return 'applied';
      }
    }
    await applyToOrder(centre, payment.payNo, mismatch);
    return recorded ? 'applied' : 'unchanged';
  }
  throw new Error(`payment ${first.payNo}: success not recorded after ${MAX_SUCCESS_RACE_ROUNDS} rounds`);
}

/**
 * The common case, in one commit on the order's shard: the order is waiting and this is its
 * first success — the payment is recorded as SUCCEEDED and applied in the transaction that pays
 * the order. False when the order says anything else (a duplicate, a cancelled order, a race);
 * the general path then records the success and acts on the order's answer.
 */
async function payInOneCommit(centre: PaymentCentre, payment: Payment, trade: ChannelTrade): Promise<boolean> {
  const now_ms = centre.platform.now();
  const paid_at_ms = trade.paid_at_ms ?? now_ms;
  try {
    const outcome = await paymentSucceeded(
      centre.platform,
      payment.orderNo,
      { paymentNo: payment.payNo, amount_fen: payment.amount_fen, paid_at_ms },
      {
        inPaidTransaction: async (orderTransaction) => {
          // The order's shard holds its payments: orders opens the transaction that pays the order, and the payment's row moves in it.
          const trx = orderTransaction as unknown as PaymentsShardTransaction;
          const changes = { channel_trade_no: trade.channelTradeNo ?? payment.channelTradeNo, succeeded_at_ms: paid_at_ms, disposition: 'applied' as const };
          if (!(await updatePayment(trx, payment, 'SUCCEEDED', changes, now_ms))) throw new AppError('payment_state_conflict');
          await cancelQueryJobs(trx, payment.payNo);
        },
      },
    );
    return outcome === 'paid';
  } catch (error) {
    if (isAppError(error, 'payment_state_conflict')) return false;
    throw error;
  }
}

/** The active query's jobs of a payment that needs no more asking (keys payment.query:{payNo}:{attempt}). */
async function cancelQueryJobs(trx: PaymentsShardTransaction, payNo: string): Promise<void> {
  await cancelJobs(trx, `${PAYMENT_QUERY_JOB}:${payNo}:`);
}

/**
 * Takes a recorded success to the order (`paymentSucceeded`) and acts on its answer: paid,
 * or refunded automatically in full as a duplicate (重复支付), for a cancelled order, for an
 * amount that does not match, or because on-payment stock ran out. Idempotent.
 */
export async function applyToOrder(centre: PaymentCentre, payNo: string, amountMismatch = false): Promise<Disposition | undefined> {
  const db = shardOfNumber(centre.platform, payNo)!;
  const payment = await findPayment(db, payNo);
  if (!payment || payment.disposition !== null) return payment?.disposition ?? undefined;
  if (payment.status !== 'SUCCEEDED' && payment.status !== 'PARTLY_REFUNDED' && payment.status !== 'REFUNDED') return undefined;
  const outcome = amountMismatch
    ? 'amount_mismatch'
    : await paymentSucceeded(centre.platform, payment.orderNo, { paymentNo: payNo, amount_fen: payment.amount_fen, paid_at_ms: payment.succeeded_at_ms ?? centre.platform.now() });
  const disposition: Disposition = outcome === 'paid' || outcome === 'already_paid' ? 'applied' : outcome;
  const now_ms = centre.platform.now();
  const refundNo = automaticRefundNo(payNo);
  const decided = await withPayment(db, payNo, async (trx, current) => {
    if (current.disposition !== null) return false;
    if (!(await updatePayment(trx, current, current.status, { disposition }, now_ms))) throw new LostRace();
    const after = { ...current, version: current.version + 1 };
    if (disposition !== 'applied' && current.amount_fen > current.refundCommitted_fen) {
      await insertRefund(
        trx,
        after,
        { refundNo, amount_fen: current.amount_fen - current.refundCommitted_fen, reason: disposition, lineNos: null, requestKey: null, requestedBy: 'system' },
        now_ms,
      );
    }
    await cancelJob(trx, applyJobKey(payNo));
    return true;
  });
  if (decided && disposition !== 'applied') {
    centre.platform.log.warn({ payNo, orderNo: payment.orderNo, disposition }, 'payment succeeded but the order did not take it: refunding it in full');
    await driveRefund(centre, payNo, refundNo);
  }
  return disposition;
}

async function markFinished(centre: PaymentCentre, payNo: string): Promise<void> {
  const db = shardOfNumber(centre.platform, payNo)!;
  await withPayment(db, payNo, async (trx, payment) => {
    if (payment.finished) return;
    if (!(await updatePayment(trx, payment, payment.status, { finished: 1 }, centre.platform.now()))) throw new LostRace();
  });
}

/** The channel says more was refunded than we know: ask about every refund still open. */
async function followOpenRefunds(centre: PaymentCentre, payNo: string): Promise<void> {
  const db = shardOfNumber(centre.platform, payNo)!;
  for (const refund of await refundsOfPayment(db, payNo)) {
    if (refund.status === 'REQUESTED' || refund.status === 'PROCESSING') await driveRefund(centre, payNo, refund.refundNo);
  }
}
