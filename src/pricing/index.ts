export { DEFAULT_LIMITS, MAX_COUPONS, MAX_PRICED_LINES, MAX_PROMOTIONS, MAX_SHIPPING_FEE_FEN, PricingError, priceCart, ShippingFeeTooHigh } from './engine.ts';
export { MAX_ORDER_PAYABLE_FEN, MAX_RULE_AMOUNT_FEN } from './limits.ts';
export { BASIS_POINTS, merchantOfScope, percentOf } from './rules.ts';
export * from './types.ts';
