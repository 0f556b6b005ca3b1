import type { StateTable } from '../platform/db/compare-and-set.ts';
import * as machine from '../platform/state-machine.ts';

/**
 * The order state machine as data: from → the states it may move to. Terminal states have
 * no exits. Every change is a compare-and-set on status and version (see store.ts).
 */
export const ORDER_TRANSITIONS = {
  PENDING_PAYMENT: ['PAID', 'CANCELLED'],
  // A paid order whose every line was refunded is REFUNDED; a partial refund leaves it PAID.
  PAID: ['REFUNDED'],
  CANCELLED: [],
  REFUNDED: [],
} as const satisfies Record<string, readonly string[]>;

export type OrderStatus = keyof typeof ORDER_TRANSITIONS;
export const ORDER_STATUSES = machine.statesOf<OrderStatus>(ORDER_TRANSITIONS);

/** The orders table as the compare-and-set sees it. */
export const ORDER_STATE_TABLE: StateTable<OrderStatus> = { table: 'orders', what: 'order', stateColumn: 'status', transitions: ORDER_TRANSITIONS, versioned: true };

export function canTransition(from: OrderStatus, to: OrderStatus): boolean {
  return machine.canTransition<OrderStatus>(ORDER_TRANSITIONS, from, to);
}

export function isTerminal(status: OrderStatus): boolean {
  return machine.isTerminal<OrderStatus>(ORDER_TRANSITIONS, status);
}

/** sold_out_at_payment: an on-payment line's stock ran out before the payment came; the payment is refunded. */
export const CANCEL_REASONS = ['buyer_cancelled', 'payment_timeout', 'sold_out_at_payment'] as const;
export type CancelReason = (typeof CANCEL_REASONS)[number];
