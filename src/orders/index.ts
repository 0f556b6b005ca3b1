export * from './events.ts';
export {
  CHECKOUT_RATE_LIMIT,
  CHECKOUT_RATE_WINDOW_MS,
  DEFAULT_BUYER_LIMITS,
  MAX_OPEN_ORDERS_PER_BUYER,
  MAX_UNPAID_UNITS_PER_BUYER_SKU,
  checkCheckoutLimits,
  lockBuyerCheckouts,
  type BuyerLimits,
} from './buyer-limits.ts';
export {
  abandonIdempotencyKey,
  claimIdempotencyKey,
  completeIdempotencyKey,
  IDEMPOTENCY_LEASE_MS,
  keyAnswer,
  LeaseLost,
  MAX_IDEMPOTENCY_KEY_LENGTH,
  moveIdempotencyKey,
  requestHash,
  seizeAbandonedKey,
  type KeyRef,
} from './idempotency.ts';
export { cancelCheckout, cancelOrder, expireCheckout, expireOrder, getCheckout, getOrder, paymentSucceeded, payWithoutChannel, type PaymentOutcome, type SucceededPayment } from './lifecycle.ts';
export { canTransition, ORDER_STATUSES, ORDER_TRANSITIONS, type OrderStatus } from './state.ts';
export { closedPayable_fen, findCheckout, listBuyerCheckouts, listBuyerOrders, lockCheckout, MAX_ORDERS_PAGE, purchasedQuantity, type Checkout, type Order } from './store.ts';
export { checkoutStatus, checkoutView, orderView, ORDERS_API_TAG, type CheckoutView, type OrderView } from './view.ts';
export { claimPriceProtection, PRICE_PROTECTION_DAYS, type PriceProtectionClaim } from './price-protection.ts';
export { recordOrderRefund, refundableLines } from './refunds.ts';
export { checkoutStates, countPurchases, findOrder, insertCheckout, toCheckout, toOrder, type CountedLine } from './store.ts';
export type * from './tables.ts';
export type * from './platform.ts';
export { overdueOrders, placedOrders, type OverduePosition, type PlacedOrder } from './stuck.ts';
