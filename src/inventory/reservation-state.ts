import type { StateTable } from '../platform/db/compare-and-set.ts';
import { statesOf } from '../platform/state-machine.ts';

/**
 * A reservation row's states, as data. A cart hold (加购减库存) is a reservation under the hold's
 * key; `transferred` means its units moved into an order's reservation, and they may come back to
 * it (a failed checkout). `pending` (秒杀): the units were taken in Redis, or are about to be, and
 * have not yet moved in the stock row: pending → reserved when the order is placed, → confirmed at
 * payment, → released (nothing to move back) when given up. `released` → reserved: a retry of the
 * same order (or the buyer's hold) takes the units again. Sold units given back pass through
 * `returning` (the stock row has them back; Redis, on a SKU it serves, has not yet counted them —
 * flash-sale/returns.ts) to `returned`. A hold's quantity changes in place (reserved → reserved).
 */
export const RESERVATION_TRANSITIONS = {
  pending: ['reserved', 'confirmed', 'released'],
  reserved: ['confirmed', 'released', 'transferred', 'reserved'],
  transferred: ['reserved', 'released'],
  released: ['reserved'],
  confirmed: ['returning'],
  returning: ['returned'],
  returned: [],
} as const satisfies Record<string, readonly string[]>;
export type ReservationState = keyof typeof RESERVATION_TRANSITIONS;
export const RESERVATION_STATES = statesOf<ReservationState>(RESERVATION_TRANSITIONS);

/** stock_reservations as the compare-and-set sees it: no version column, the state guards each write. */
export const RESERVATION_STATE_TABLE: StateTable<ReservationState> = {
  table: 'stock_reservations',
  what: 'stock reservation',
  stateColumn: 'state',
  transitions: RESERVATION_TRANSITIONS,
  versioned: false,
};
