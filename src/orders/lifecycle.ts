import { recordEvent } from '../events/index.ts';
import { cancelJob } from '../jobs/index.ts';
import { deductOnPayment, returnSoldStock } from '../inventory/index.ts';
import type { Kysely, Transaction } from 'kysely';
import type { OrderShards } from '../platform/shards.ts';
import type { OrdersPlatform, OrdersShardTables } from './platform.ts';

import { transaction } from '../platform/db/retry.ts';
import { AppError, isAppError } from '../platform/errors.ts';
import { ORDER_CANCELLED, ORDER_PAID, expireJobKey, noChannelPaymentNo, type OrderCancelled, type OrderPaid } from './events.ts';
import type { CancelReason } from './state.ts';
import { findOrder, transitionOrder, uncountPurchase, type Order } from './store.ts';
import type { OrdersDb, OrdersTransaction } from './tables.ts';

/** A lost compare-and-set is re-read and decided again at most this many times. */
const MAX_PAYMENT_RACE_ROUNDS = 5;

function shardOf<Tables>(platform: { shards: OrderShards<Tables> }, orderNo: string): Kysely<Tables> {
  const db = platform.shards.forOrderNo(orderNo);
  if (!db) throw new AppError('order_not_found');
  return db;
}

/** Reads an order; a buyer asking for someone else's order is told it does not exist. */
export async function getOrder(platform: OrdersPlatform, orderNo: string, asBuyer?: number): Promise<Order> {
  const order = await findOrder(shardOf(platform, orderNo), orderNo);
  if (!order || (asBuyer !== undefined && order.buyerId !== asBuyer)) throw new AppError('order_not_found');
  return order;
}

/**
 * PENDING_PAYMENT → CANCELLED, by the buyer or by the payment timeout. The purchase counters
 * go down in the same transaction; stock, coupons and points are returned by the
 * subscribers of order.cancelled. A lost race is `order_state_conflict`.
 */
export async function cancelOrder(platform: OrdersPlatform, orderNo: string, reason: CancelReason, asBuyer?: number): Promise<Order> {
  const db = shardOf(platform, orderNo);
  const order = await getOrder(platform, orderNo, asBuyer);
  if (order.status !== 'PENDING_PAYMENT') throw new AppError('order_not_cancellable', { details: { status: order.status } });
  const now_ms = platform.now();
  await transaction(db, async (trx) => {
    await transitionOrder(trx, order, 'CANCELLED', { cancel_reason: reason, cancelled_at_ms: now_ms }, now_ms);
    for (const line of order.lines) await uncountPurchase(trx, order.buyerId, line.activitySkuId, line.quantity);
    const event: OrderCancelled = { orderNo, buyerId: order.buyerId, reason };
    await recordEvent(trx, { type: ORDER_CANCELLED, aggregateId: orderNo, payload: event }, now_ms);
    if (reason !== 'payment_timeout') await cancelJob(trx, expireJobKey(orderNo));
  });
  platform.wake();
  return getOrder(platform, orderNo);
}

/** The order.expire job: 超时取消 of an order still unpaid. Anything else is left as it is. */
export async function expireOrder(platform: OrdersPlatform, orderNo: string): Promise<'cancelled' | 'not_pending'> {
  try {
    await cancelOrder(platform, orderNo, 'payment_timeout');
    return 'cancelled';
  } catch (error) {
    // Paid, cancelled by the buyer, or either of those a moment ago: nothing to expire.
    if (isAppError(error, 'order_not_cancellable') || isAppError(error, 'order_state_conflict')) return 'not_pending';
    throw error;
  }
}

/**
 * Pays an order whose payable is 0 through the normal transition (order.paid, the expire job
 * removed; on-payment lines are deducted, or the order is closed if they sold out). Safe to
 * repeat: a second call finds it paid by the same payment number.
 */
export async function payWithoutChannel(platform: OrdersPlatform, orderNo: string): Promise<PaymentOutcome | 'not_free'> {
  const order = await getOrder(platform, orderNo);
  if (order.payable_fen !== 0) return 'not_free';
  return paymentSucceeded(platform, orderNo, { paymentNo: noChannelPaymentNo(orderNo), amount_fen: 0, paid_at_ms: platform.now() });
}

export interface SucceededPayment {
  paymentNo: string;
  amount_fen: number;
  paid_at_ms: number;
}

/**
 * - paid: this call moved the order to PAID.
 * - already_paid: the same payment was applied before (a repeated notification).
 * - duplicate_payment: the order was paid by another payment (重复支付): refund this one.
 * - order_cancelled: the order was cancelled first: refund this payment.
 * - amount_mismatch: the payment is not the order's payable: refund it, do not ship.
 * - stock_unavailable: an on-payment line sold out before the payment came; the order is
 *   closed (cancel reason sold_out_at_payment) and the payment must be refunded.
 */
export type PaymentOutcome = 'paid' | 'already_paid' | 'duplicate_payment' | 'order_cancelled' | 'amount_mismatch' | 'stock_unavailable';

/**
 * 支付成功. Idempotent: PENDING_PAYMENT → PAID once; the reservation is confirmed by the
 * order.paid subscriber. Every other case is an outcome the payment centre acts on.
 * `inPaidTransaction` runs inside the transaction that pays the order (on the order's shard),
 * so the payment centre can record its side in the same commit; if it throws, nothing is paid.
 */
export async function paymentSucceeded(
  platform: OrdersPlatform,
  orderNo: string,
  payment: SucceededPayment,
  options: { inPaidTransaction?: (trx: OrdersTransaction) => Promise<void> } = {},
): Promise<PaymentOutcome> {
  const db = shardOf(platform, orderNo);
  for (let round = 0; round < MAX_PAYMENT_RACE_ROUNDS; round++) {
    const order = await getOrder(platform, orderNo);
    if (order.status === 'PAID' || order.status === 'REFUNDED') return order.paymentNo === payment.paymentNo ? 'already_paid' : 'duplicate_payment';
    if (order.status === 'CANCELLED') {
      // A deduction this order's payment made before it lost to the cancel goes back (safe to repeat).
      await returnSoldStock(platform.db, orderNo, 'all', platform.now());
      return 'order_cancelled';
    }
    if (payment.amount_fen !== order.payable_fen) return 'amount_mismatch';
    const onPayment = order.lines.filter((l) => l.inventoryMode === 'on_payment');
    if (onPayment.length > 0) {
      try {
        await deductOnPayment(platform.db, orderNo, onPayment.map((l) => ({ activitySkuId: l.activitySkuId, quantity: l.quantity })), platform.now());
      } catch (error) {
        if (!isAppError(error, 'insufficient_stock')) throw error;
        try {
          await cancelOrder(platform, orderNo, 'sold_out_at_payment');
          return 'stock_unavailable';
        } catch (cancelError) {
          if (isAppError(cancelError, 'order_state_conflict') || isAppError(cancelError, 'order_not_cancellable')) continue;
          throw cancelError;
        }
      }
    }
    const now_ms = platform.now();
    try {
      await transaction(db, async (trx) => {
        await transitionOrder(
          trx,
          order,
          'PAID',
          { payment_no: payment.paymentNo, paid_fen: payment.amount_fen, paid_at_ms: payment.paid_at_ms },
          now_ms,
        );
        await options.inPaidTransaction?.(trx);
        const event: OrderPaid = { orderNo, buyerId: order.buyerId, paymentNo: payment.paymentNo, paid_fen: payment.amount_fen };
        await recordEvent(trx, { type: ORDER_PAID, aggregateId: orderNo, payload: event }, now_ms);
        await cancelJob(trx, expireJobKey(orderNo));
      });
      platform.wake();
      return 'paid';
    } catch (error) {
      if (!isAppError(error, 'order_state_conflict')) throw error;
      // Lost to a cancel or timeout: the units deducted for it go back. Lost to the same
      // payment applied concurrently: those units are that payment's, and stay sold.
      if (onPayment.length > 0 && (await getOrder(platform, orderNo)).status === 'CANCELLED') {
        await returnSoldStock(platform.db, orderNo, 'all', platform.now());
      }
    }
  }
  throw new AppError('order_state_conflict', { details: { orderNo } });
}
