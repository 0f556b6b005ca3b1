import { recordEvent } from '../events/index.ts';
import { cancelJob, scheduleJob } from '../jobs/index.ts';
import { deductOnPayment, returnSoldStock } from '../inventory/index.ts';
import type { Kysely, Transaction } from 'kysely';
import type { OrderShards } from '../platform/shards.ts';
import type { OrdersPlatform, OrdersShardTables } from './platform.ts';

import { transaction } from '../platform/db/retry.ts';
import { AppError, isAppError } from '../platform/errors.ts';
import { ORDER_CANCELLED, ORDER_PAID, ORDER_PAY_WITHOUT_CHANNEL_JOB, expireJobKey, noChannelPaymentNo, payWithoutChannelJobKey, type OrderCancelled, type OrderPaid } from './events.ts';
import type { CancelReason } from './state.ts';
import { closedPayable_fen, findCheckout, findOrder, lockCheckout, transitionOrder, uncountPurchase, type Checkout, type Order } from './store.ts';
import type { OrdersTransaction } from './tables.ts';

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
 * PENDING_PAYMENT → CANCELLED, by the buyer: before payment a checkout moves as one, so
 * cancelling an order cancels its checkout (every order of it), and is refused once any of them
 * is paid. A lost race is `order_state_conflict`. Answers the order as it is after.
 */
export async function cancelOrder(platform: OrdersPlatform, orderNo: string, reason: CancelReason, asBuyer?: number): Promise<Order> {
  const order = await getOrder(platform, orderNo, asBuyer);
  await cancelCheckout(platform, order.checkoutNo, reason, asBuyer);
  return getOrder(platform, orderNo);
}

/**
 * Cancels every order of an unpaid checkout in one transaction (the buyer's cancel, the payment
 * timeout): all or none. The purchase counters go down with them; stock, coupons and points are
 * returned by the subscribers of order.cancelled, once for the checkout.
 */
export async function cancelCheckout(platform: OrdersPlatform, checkoutNo: string, reason: CancelReason, asBuyer?: number): Promise<Checkout> {
  const checkout = await getCheckout(platform, checkoutNo, asBuyer);
  const waiting = (c: Checkout) => c.orders.every((o) => o.status === 'PENDING_PAYMENT');
  if (!waiting(checkout)) throw notCancellable(checkout);
  await cancelOrders(platform, checkoutNo, reason, (locked) => {
    if (!waiting(locked)) throw notCancellable(locked);
    return locked.orders;
  });
  return getCheckout(platform, checkoutNo);
}

function notCancellable(checkout: Checkout): AppError {
  const statuses = [...new Set(checkout.orders.map((o) => o.status))];
  return new AppError('order_not_cancellable', { details: { status: statuses.find((s) => s !== 'PENDING_PAYMENT') ?? statuses[0], statuses: Object.fromEntries(checkout.orders.map((o) => [o.orderNo, o.status])) } });
}

/**
 * The one transaction every cancel runs in: the checkout locked and read again, `choose` picks the
 * orders to cancel from what it is now, each moves by compare-and-set, and each gets its event
 * saying whether the whole checkout is now cancelled. Returns the orders cancelled.
 */
async function cancelOrders(platform: OrdersPlatform, checkoutNo: string, reason: CancelReason, choose: (checkout: Checkout) => readonly Order[]): Promise<Order[]> {
  const db = shardOf(platform, checkoutNo);
  const now_ms = platform.now();
  const cancelled = await transaction(db, async (trx) => {
    const checkout = await lockCheckout(trx, checkoutNo);
    if (!checkout) throw new AppError('order_not_found');
    const chosen = choose(checkout).filter((o) => o.status === 'PENDING_PAYMENT');
    if (chosen.length === 0) return [];
    const ids = new Set(chosen.map((o) => o.orderNo));
    const after = { orders: checkout.orders.map((o) => (ids.has(o.orderNo) ? { ...o, status: 'CANCELLED' as const } : o)) };
    const wholeCheckout = after.orders.every((o) => o.status === 'CANCELLED');
    for (const order of chosen) {
      await transitionOrder(trx, order, 'CANCELLED', { cancel_reason: reason, cancelled_at_ms: now_ms }, now_ms);
      for (const line of order.lines) await uncountPurchase(trx, order.buyerId, line.activitySkuId, line.quantity);
      const event: OrderCancelled = {
        orderNo: order.orderNo,
        checkoutNo,
        buyerId: order.buyerId,
        reason,
        lines: order.lines.map((l) => ({ activitySkuId: l.activitySkuId, quantity: l.quantity })),
        wholeCheckout,
        checkoutClosed_fen: closedPayable_fen(after),
        checkoutPayable_fen: checkout.payable_fen,
      };
      await recordEvent(trx, { type: ORDER_CANCELLED, aggregateId: order.orderNo, payload: event }, now_ms);
    }
    if (reason !== 'payment_timeout' && after.orders.every((o) => o.status !== 'PENDING_PAYMENT')) await cancelJob(trx, expireJobKey(checkoutNo));
    return chosen;
  });
  platform.wake();
  return cancelled;
}

/**
 * The order.expire job: 超时取消 of a checkout still unpaid, all its orders at once. Should some
 * of its orders be paid and others still waiting (a sub-payment that never came), the waiting
 * ones are cancelled on their own: after payment each order lives on its own. Anything else is
 * left as it is.
 */
export async function expireCheckout(platform: OrdersPlatform, checkoutNo: string): Promise<'cancelled' | 'not_pending'> {
  try {
    const cancelled = await cancelOrders(platform, checkoutNo, 'payment_timeout', (checkout) => checkout.orders);
    return cancelled.length > 0 ? 'cancelled' : 'not_pending';
  } catch (error) {
    // Paid, cancelled by the buyer, or either of those a moment ago: nothing to expire.
    if (isAppError(error, 'order_state_conflict') || isAppError(error, 'order_not_found')) return 'not_pending';
    throw error;
  }
}

/** The timeout of an order's checkout (the consistency pass repairs overdue orders so). */
export async function expireOrder(platform: OrdersPlatform, orderNo: string): Promise<'cancelled' | 'not_pending'> {
  const order = await findOrder(shardOf(platform, orderNo), orderNo);
  if (!order) return 'not_pending';
  return expireCheckout(platform, order.checkoutNo);
}

/** Reads a checkout; a buyer asking for someone else's is told it does not exist. */
export async function getCheckout(platform: OrdersPlatform, checkoutNo: string, asBuyer?: number): Promise<Checkout> {
  const checkout = await findCheckout(shardOf(platform, checkoutNo), checkoutNo);
  if (!checkout || (asBuyer !== undefined && checkout.buyerId !== asBuyer)) throw new AppError('checkout_not_found');
  return checkout;
}

/**
 * Pays an order whose payable is 0 through the normal transition (order.paid, the expire job
 * removed; on-payment lines are deducted, or the order is closed if they sold out). Safe to
 * repeat: a second call finds it paid by the same payment number.
 */
export async function payWithoutChannel(platform: OrdersPlatform, orderNo: string): Promise<PaymentOutcome | 'not_free'> {
  const order = await getOrder(platform, orderNo);
  if (order.payable_fen !== 0) return 'not_free';
  // In a checkout with something to pay, such an order is paid with the first of its siblings, not before.
  const checkout = await getCheckout(platform, order.checkoutNo);
  if (checkout.payable_fen > 0 && !checkout.orders.some((o) => o.payable_fen > 0 && (o.status === 'PAID' || o.status === 'REFUNDED'))) return 'not_free';
  return paymentSucceeded(platform, orderNo, { paymentNo: noChannelPaymentNo(orderNo), amount_fen: 0, paid_at_ms: platform.now() });
}

/**
 * In the transaction that pays an order: the checkout's orders with nothing to pay (a merchant's
 * coupon covering its whole order) are paid with it, by their job; the timeout is called off once
 * no order of the checkout waits for a payment.
 */
async function afterOrderPaid(trx: OrdersTransaction, order: Order, now_ms: number): Promise<void> {
  const siblings = await trx
    .selectFrom('orders')
    .select(['order_no', 'payable_fen'])
    .where('checkout_no', '=', order.checkoutNo)
    .where('status', '=', 'PENDING_PAYMENT')
    .where('order_no', '<>', order.orderNo)
    .execute();
  for (const sibling of siblings.filter((s) => Number(s.payable_fen) === 0)) {
    await scheduleJob(trx, { kind: ORDER_PAY_WITHOUT_CHANNEL_JOB, key: payWithoutChannelJobKey(sibling.order_no), payload: { orderNo: sibling.order_no }, due_at_ms: now_ms }, now_ms);
  }
  if (siblings.length === 0) await cancelJob(trx, expireJobKey(order.checkoutNo));
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
    const onPayment = order.lines.filter((l) => l.inventoryMode === 'on_payment');
    // Deductions are holds like reservations: kept under the checkout number, where the
    // inventory's cancel and refund consumers look; only this order's SKUs are touched, so a
    // paid sibling's units stay sold.
    const onPaymentSkus = onPayment.map((l) => l.activitySkuId);
    if (order.status === 'CANCELLED') {
      // A deduction this order's payment made before it lost to the cancel goes back (safe to repeat).
      await returnSoldStock(platform.db, order.checkoutNo, onPaymentSkus, platform.now());
      return 'order_cancelled';
    }
    if (payment.amount_fen !== order.payable_fen) return 'amount_mismatch';
    if (onPayment.length > 0) {
      try {
        await deductOnPayment(platform.db, order.checkoutNo, onPayment.map((l) => ({ activitySkuId: l.activitySkuId, quantity: l.quantity })), platform.now());
      } catch (error) {
        if (!isAppError(error, 'insufficient_stock')) throw error;
        try {
          // This order alone: its siblings in the checkout are paid by their own sub-payments.
          const cancelled = await cancelOrders(platform, order.checkoutNo, 'sold_out_at_payment', (checkout) => checkout.orders.filter((o) => o.orderNo === orderNo));
          if (cancelled.length === 1) return 'stock_unavailable';
          continue;
        } catch (cancelError) {
          if (isAppError(cancelError, 'order_state_conflict')) continue;
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
        const event: OrderPaid = {
          orderNo,
          checkoutNo: order.checkoutNo,
          buyerId: order.buyerId,
          paymentNo: payment.paymentNo,
          paid_fen: payment.amount_fen,
          lines: order.lines.map((l) => ({ activitySkuId: l.activitySkuId, quantity: l.quantity })),
        };
        await recordEvent(trx, { type: ORDER_PAID, aggregateId: orderNo, payload: event }, now_ms);
        await afterOrderPaid(trx, order, now_ms);
      });
      platform.wake();
      return 'paid';
    } catch (error) {
      if (!isAppError(error, 'order_state_conflict')) throw error;
      // Lost to a cancel or timeout: the units deducted for it go back. Lost to the same
      // payment applied concurrently: those units are that payment's, and stay sold.
      if (onPayment.length > 0 && (await getOrder(platform, orderNo)).status === 'CANCELLED') {
        await returnSoldStock(platform.db, order.checkoutNo, onPaymentSkus, platform.now());
      }
    }
  }
  throw new AppError('order_state_conflict', { details: { orderNo } });
}
