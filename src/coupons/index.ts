export * from './coupons.ts';
export type * from './tables.ts';
