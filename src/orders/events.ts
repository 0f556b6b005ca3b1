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

/**
 * Every order event names its checkout: a checkout's holds (stock, coupons, points) are kept
 * under the checkout number, and each order's event moves its own lines' part of them.
 */
export interface OrderPlaced {
  orderNo: string;
  checkoutNo: string;
  buyerId: number;
  placed_at_ms: number;
  lines: OrderEventLine[];
}

export interface OrderPaid {
  orderNo: string;
  checkoutNo: string;
  buyerId: number;
  paymentNo: string;
  paid_fen: number;
  /** The order's lines: their part of the checkout's stock is confirmed. */
  lines: OrderEventLine[];
}

export interface OrderCancelled {
  orderNo: string;
  checkoutNo: string;
  buyerId: number;
  reason: string;
  lines: OrderEventLine[];
  /**
   * Every order of the checkout is cancelled now, none was paid: everything the checkout held goes
   * back. False when the checkout lives on through a paid order (an on-payment line sold out, or an
   * order whose sub-payment never came): this order's stock goes back, and its share of the points.
   */
  wholeCheckout: boolean;
  /** The payable of the checkout's cancelled orders plus its other orders' refunded lines, this cancel's included. */
  checkoutClosed_fen: number;
  checkoutPayable_fen: number;
}

/** 超时取消: one job per checkout, at its payment deadline (the number of an order placed before checkouts is its own checkout's). */
/** The number a checkout's holds are kept under; an event written before checkouts names only its order, whose number was its own checkout's. */
export function holdNoOf(event: { orderNo: string; checkoutNo?: string }): string {
  return event.checkoutNo ?? event.orderNo;
}

export const ORDER_EXPIRE_JOB = 'order.expire';
export const expireJobKey = (checkoutNo: string): string => `${ORDER_EXPIRE_JOB}:${checkoutNo}`;

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
  checkoutNo: string;
  buyerId: number;
  refundNo: string;
  reason: string;
  lines: (OrderEventLine & { lineNo: number })[];
  amount_fen: number;
  /** The payable of every line refunded so far, this refund's included. */
  refundedLinesPayable_fen: number;
  payable_fen: number;
  fullyRefunded: boolean;
  /** As OrderCancelled's: what of the checkout is refunded or cancelled so far, of its payable — the points come back in that proportion. */
  checkoutClosed_fen: number;
  checkoutPayable_fen: number;
  /** No order of the checkout is left with anything not refunded or cancelled: its coupons may go back. */
  checkoutFullyRefunded: boolean;
}
