import type { StateTable } from '../platform/db/compare-and-set.ts';
import * as machine from '../platform/state-machine.ts';

/**
 * Payment and refund states as data: from → the states it may move to. A payment we closed
 * (or that failed) can still turn out to have taken money — the channel is the truth about
 * money — so CLOSED and FAILED may move to SUCCEEDED; the order then decides whether that
 * success pays it or is refunded as a duplicate.
 */
export const PAYMENT_TRANSITIONS = {
  CREATED: ['SUCCEEDED', 'CLOSED', 'FAILED'],
  CLOSED: ['SUCCEEDED'],
  FAILED: ['SUCCEEDED'],
  SUCCEEDED: ['PARTLY_REFUNDED', 'REFUNDED'],
  PARTLY_REFUNDED: ['PARTLY_REFUNDED', 'REFUNDED'],
  REFUNDED: [],
} as const satisfies Record<string, readonly string[]>;

export type PaymentStatus = keyof typeof PAYMENT_TRANSITIONS;

/** A payment whose money was taken: refunded in part, in full, or not at all. */
export const PAID_STATUSES: readonly PaymentStatus[] = ['SUCCEEDED', 'PARTLY_REFUNDED', 'REFUNDED'];

export const REFUND_TRANSITIONS = {
  // Written before the channel is asked; asked again (idempotent by refund number) until it answers.
  REQUESTED: ['PROCESSING', 'SUCCEEDED', 'FAILED'],
  PROCESSING: ['SUCCEEDED', 'FAILED'],
  SUCCEEDED: [],
  FAILED: [],
} as const satisfies Record<string, readonly string[]>;

export type RefundStatus = keyof typeof REFUND_TRANSITIONS;

/** payment_orders and payment_refunds as the compare-and-set sees them. */
export const PAYMENT_STATE_TABLE: StateTable<PaymentStatus> = { table: 'payment_orders', what: 'payment', stateColumn: 'status', transitions: PAYMENT_TRANSITIONS, versioned: true };
export const REFUND_STATE_TABLE: StateTable<RefundStatus> = { table: 'payment_refunds', what: 'refund', stateColumn: 'status', transitions: REFUND_TRANSITIONS, versioned: true };

export function canMovePayment(from: PaymentStatus, to: PaymentStatus): boolean {
  return machine.canTransition<PaymentStatus>(PAYMENT_TRANSITIONS, from, to);
}

export function canMoveRefund(from: RefundStatus, to: RefundStatus): boolean {
  return machine.canTransition<RefundStatus>(REFUND_TRANSITIONS, from, to);
}

/**
 * Why money goes back. The first four are automatic, decided by the order's answer to a
 * success (重复支付 and its kin); the rest are asked for.
 */
export const REFUND_REASONS = ['duplicate_payment', 'order_cancelled', 'amount_mismatch', 'stock_unavailable', 'buyer_request', 'admin', 'price_protection'] as const;
export type RefundReason = (typeof REFUND_REASONS)[number];

/** What the order made of a payment's success. */
export type Disposition = 'applied' | 'duplicate_payment' | 'order_cancelled' | 'amount_mismatch' | 'stock_unavailable';
