export * from './coupons.ts';
export type * from './tables.ts';
export { lockedCoupons, type CouponPosition } from './stuck.ts';
