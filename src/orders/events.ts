/** What the orders module tells others, through the outbox. */
export const ORDER_PLACED = 'order.placed';
export const ORDER_PAID = 'order.paid';
export const ORDER_CANCELLED = 'order.cancelled';
/** Lines of a paid order were refunded: their stock, and per policy coupons and points, go back. */
export const ORDER_REFUNDED = 'order.refunded';
/** A 价保 claim: the payment centre refunds `amount_fen` of the order's payment. */
export const ORDER_PRICE_PROTECTED = 'order.price_protected';

export interface OrderEventLine {
  activitySkuId: number;
  quantity: number;
}

export interface OrderPlaced {
  orderNo: string;
  buyerId: number;
  placed_at_ms: number;
  lines: OrderEventLine[];
}

export interface OrderPaid {
  orderNo: string;
  buyerId: number;
  paymentNo: string;
  paid_fen: number;
}

export interface OrderCancelled {
  orderNo: string;
  buyerId: number;
  reason: string;
}

export const ORDER_EXPIRE_JOB = 'order.expire';
export const expireJobKey = (orderNo: string): string => `${ORDER_EXPIRE_JOB}:${orderNo}`;

/**
 * An order with nothing to pay (a 100 % coupon, points covering all) is paid without a channel,
 * by checkout at once and, should that not finish, by this job written with the order.
 */
export const ORDER_PAY_WITHOUT_CHANNEL_JOB = 'order.pay-without-channel';
export const payWithoutChannelJobKey = (orderNo: string): string => `${ORDER_PAY_WITHOUT_CHANNEL_JOB}:${orderNo}`;
/** The payment number such an order is paid under: no channel trade stands behind it. */
export const noChannelPaymentNo = (orderNo: string): string => `F${orderNo}`;

export interface OrderPriceProtected {
  orderNo: string;
  buyerId: number;
  lineNo: number;
  amount_fen: number;
  paymentNo: string | null;
}

export interface OrderRefunded {
  orderNo: string;
  buyerId: number;
  refundNo: string;
  reason: string;
  lines: (OrderEventLine & { lineNo: number })[];
  amount_fen: number;
  /** The payable of every line refunded so far, this refund's included. */
  refundedLinesPayable_fen: number;
  payable_fen: number;
  fullyRefunded: boolean;
}
