export * from './cart.ts';
export type * from './tables.ts';
export { linesLeftByOrders, type LeftInCart } from './stuck.ts';
