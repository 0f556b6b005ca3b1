export { checkout, verifyCheckoutReservation } from './checkout.ts';
export { CHECKOUT_STEPS, VERIFY_RESERVATION_AFTER_MS, VERIFY_RESERVATION_JOB, type CheckoutResponse } from './steps.ts';
export { MAX_CHECKOUT_LINES, MAX_REMARK_LENGTH, type CheckoutRequest } from './validation.ts';
export { priceForBuyer, type PricingChoices } from './pricing-step.ts';
