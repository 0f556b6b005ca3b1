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
export const ORDER_STATUSES = Object.keys(ORDER_TRANSITIONS) as OrderStatus[];

export function canTransition(from: OrderStatus, to: OrderStatus): boolean {
  return (ORDER_TRANSITIONS[from] as readonly OrderStatus[]).includes(to);
}

export function isTerminal(status: OrderStatus): boolean {
  return ORDER_TRANSITIONS[status].length === 0;
}

/** sold_out_at_payment: an on-payment line's stock ran out before the payment came; the payment is refunded. */
export const CANCEL_REASONS = ['buyer_cancelled', 'payment_timeout', 'sold_out_at_payment'] as const;
export type CancelReason = (typeof CANCEL_REASONS)[number];
