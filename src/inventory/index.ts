export * from './reservations.ts';
export * from './flash-sale/index.ts';
export type * from './tables.ts';
export { heldReservations, releaseHeldStock, type ReservationPosition } from './stuck.ts';
