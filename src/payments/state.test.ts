import { describe, expect, it } from 'vitest';
import { canMovePayment, canMoveRefund, PAYMENT_TRANSITIONS, REFUND_TRANSITIONS, type PaymentStatus, type RefundStatus } from './state.ts';

describe('payment state machine', () => {
  const allowed: [PaymentStatus, PaymentStatus][] = [
    ['CREATED', 'SUCCEEDED'],
    ['CREATED', 'CLOSED'],
    ['CREATED', 'FAILED'],
    // The channel holds the money: a trade we closed or saw fail can still turn out paid.
    ['CLOSED', 'SUCCEEDED'],
    ['FAILED', 'SUCCEEDED'],
    ['SUCCEEDED', 'PARTLY_REFUNDED'],
    ['SUCCEEDED', 'REFUNDED'],
    ['PARTLY_REFUNDED', 'PARTLY_REFUNDED'],
    ['PARTLY_REFUNDED', 'REFUNDED'],
  ];
  const statuses = Object.keys(PAYMENT_TRANSITIONS) as PaymentStatus[];
  for (const from of statuses) {
    for (const to of statuses) {
      const expected = allowed.some(([f, t]) => f === from && t === to);
      it(`payment ${from} → ${to} is ${expected ? 'allowed' : 'refused'}`, () => expect(canMovePayment(from, to)).toBe(expected));
    }
  }
  const refundAllowed: [RefundStatus, RefundStatus][] = [
    ['REQUESTED', 'PROCESSING'],
    ['REQUESTED', 'SUCCEEDED'],
    ['REQUESTED', 'FAILED'],
    ['PROCESSING', 'SUCCEEDED'],
    ['PROCESSING', 'FAILED'],
  ];
  const refundStatuses = Object.keys(REFUND_TRANSITIONS) as RefundStatus[];
  for (const from of refundStatuses) {
    for (const to of refundStatuses) {
      const expected = refundAllowed.some(([f, t]) => f === from && t === to);
      it(`refund ${from} → ${to} is ${expected ? 'allowed' : 'refused'}`, () => expect(canMoveRefund(from, to)).toBe(expected));
    }
  }
});
