/** available → locked by an unpaid order → used at payment; locked → available when that order ends unpaid. */
export const COUPON_STATES = ['available', 'locked', 'used'] as const;
export type CouponState = (typeof COUPON_STATES)[number];
