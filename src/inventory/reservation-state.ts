/**
 * reserved → confirmed | released | transferred; confirmed → returned (sold units given back).
 * A cart hold (加购减库存) is a reservation under the hold's key; `transferred` means its units
 * moved into an order's reservation. `pending` (秒杀): the units were taken in Redis, or are about
 * to be, and have not yet moved in the stock row: pending → reserved when the order is placed,
 * → confirmed at payment, → released (nothing to move back) when given up. `returning` (秒杀): sold
 * units of a SKU Redis serves went back to available in the stock row, and Redis has not yet
 * counted them; → returned once it has (flash-sale/returns.ts).
 */
export const RESERVATION_STATES = ['pending', 'reserved', 'confirmed', 'released', 'returning', 'returned', 'transferred'] as const;
export type ReservationState = (typeof RESERVATION_STATES)[number];
