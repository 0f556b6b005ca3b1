export * from './cart.ts';
export type * from './tables.ts';
