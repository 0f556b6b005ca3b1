import { describe, expect, it } from 'vitest';
import { canTransition, isTerminal } from '../platform/state-machine.ts';
import { RESERVATION_STATES, RESERVATION_TRANSITIONS, type ReservationState } from './reservation-state.ts';

describe('stock reservation state machine', () => {
  const allowed: [ReservationState, ReservationState][] = [
    ['pending', 'reserved'],
    ['pending', 'confirmed'],
    ['pending', 'released'],
    ['reserved', 'confirmed'],
    ['reserved', 'released'],
    ['reserved', 'transferred'],
    // A cart hold's quantity changes in place.
    ['reserved', 'reserved'],
    ['transferred', 'reserved'],
    ['transferred', 'released'],
    // A retry of the same order, or the buyer's hold, takes the units again.
    ['released', 'reserved'],
    ['confirmed', 'returning'],
    ['returning', 'returned'],
  ];
  for (const from of RESERVATION_STATES) {
    for (const to of RESERVATION_STATES) {
      const expected = allowed.some(([f, t]) => f === from && t === to);
      it(`${from} → ${to} is ${expected ? 'allowed' : 'refused'}`, () => expect(canTransition(RESERVATION_TRANSITIONS, from, to)).toBe(expected));
    }
  }
  it('returned is the only terminal state', () => {
    expect(RESERVATION_STATES.filter((state) => isTerminal(RESERVATION_TRANSITIONS, state))).toEqual(['returned']);
  });
});
