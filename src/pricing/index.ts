export { DEFAULT_LIMITS, MAX_COUPONS, MAX_PRICED_LINES, MAX_PROMOTIONS, PricingError, priceCart } from './engine.ts';
export { BASIS_POINTS, percentOf } from './rules.ts';
export * from './types.ts';
