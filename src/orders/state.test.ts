import { describe, expect, it } from 'vitest';
import { canTransition, isTerminal, ORDER_STATUSES, ORDER_TRANSITIONS } from './state.ts';

describe('order state machine', () => {
  const allowed: [string, string][] = [
    ['PENDING_PAYMENT', 'PAID'],
    ['PENDING_PAYMENT', 'CANCELLED'],
    ['PAID', 'REFUNDED'],
  ];
  for (const from of ORDER_STATUSES) {
    for (const to of ORDER_STATUSES) {
      const expected = allowed.some(([f, t]) => f === from && t === to);
      it(`${from} → ${to} is ${expected ? 'allowed' : 'refused'}`, () => expect(canTransition(from, to)).toBe(expected));
    }
  }
  it('every target is a known state; CANCELLED and REFUNDED are terminal', () => {
    for (const targets of Object.values(ORDER_TRANSITIONS)) for (const t of targets) expect(ORDER_STATUSES).toContain(t);
    expect(isTerminal('CANCELLED')).toBe(true);
    expect(isTerminal('REFUNDED')).toBe(true);
    expect(isTerminal('PAID')).toBe(false);
    expect(isTerminal('PENDING_PAYMENT')).toBe(false);
  });
});
