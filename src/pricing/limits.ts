/**
 * The most an order may cost, in fen: far under every channel's single-trade limit (Alipay's is
 * 100,000,000 yuan), so an order the platform accepts is one a channel can take. Checkout and
 * the cart preview refuse an order past it with `order_payable_exceeds_limit`.
 */
export const MAX_ORDER_PAYABLE_FEN = 100_000_000;
/** The most any amount of a promotion or coupon rule (threshold, discount, cap) may be at admin input. */
export const MAX_RULE_AMOUNT_FEN = MAX_ORDER_PAYABLE_FEN;
