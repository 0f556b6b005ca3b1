import type { Checkout, Order } from './store.ts';

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/** The order as the API shows it: amounts in fen with their currency, times in UTC. */
export function orderView(o: Order) {
  return {
    orderNo: o.orderNo,
    checkoutNo: o.checkoutNo,
    merchantId: o.merchantId,
    status: o.status,
    version: o.version,
    buyerId: o.buyerId,
    leaderId: o.leaderId,
    currency: o.currency,
    itemsTotalFen: o.itemsTotal_fen,
    discountTotalFen: o.discountTotal_fen,
    shippingFen: o.shipping_fen,
    payableFen: o.payable_fen,
    couponIds: o.couponIds,
    pointsUsed: o.pointsUsed,
    remark: o.remark,
    paymentNo: o.paymentNo,
    paidFen: o.paid_fen,
    refundedFen: o.refunded_fen,
    cancelReason: o.cancelReason,
    createdAt: iso(o.created_at_ms),
    expiresAt: iso(o.expires_at_ms),
    paidAt: iso(o.paid_at_ms),
    cancelledAt: iso(o.cancelled_at_ms),
    lines: o.lines.map((l) => ({
      lineNo: l.lineNo,
      activityId: l.activityId,
      activitySkuId: l.activitySkuId,
      skuId: l.skuId,
      merchantId: l.merchantId,
      title: l.title,
      inventoryMode: l.inventoryMode,
      unitPriceFen: l.unitPrice_fen,
      quantity: l.quantity,
      subtotalFen: l.subtotal_fen,
      discountFen: l.discount_fen,
      platformFundedFen: l.platformFunded_fen,
      merchantFundedFen: l.merchantFunded_fen,
      shippingFen: l.shipping_fen,
      payableFen: l.payable_fen,
      refundedAt: iso(l.refunded_at_ms),
      discounts: l.discounts.map((d) => ({ source: d.source, id: d.id, amountFen: d.amount_fen, ...(d.funder !== undefined && { funder: d.funder }) })),
      segments: l.segments.map((s) => ({ quantity: s.quantity, unitPriceFen: s.unitPrice_fen, basis: s.basis })),
    })),
  };
}

export type OrderView = ReturnType<typeof orderView>;

/**
 * What a checkout is, from its orders: unpaid while every order waits for payment, cancelled
 * when every order is, paid when none waits any more and one was paid.
 */
export function checkoutStatus(checkout: Pick<Checkout, 'orders'>): 'PENDING_PAYMENT' | 'PAID' | 'CANCELLED' {
  if (checkout.orders.some((o) => o.status === 'PENDING_PAYMENT')) return 'PENDING_PAYMENT';
  return checkout.orders.every((o) => o.status === 'CANCELLED') ? 'CANCELLED' : 'PAID';
}

/** The checkout as the API shows it (what POST /orders answers): its totals and each merchant's order. */
export function checkoutView(c: Checkout) {
  return {
    checkoutNo: c.checkoutNo,
    status: checkoutStatus(c),
    buyerId: c.buyerId,
    leaderId: c.leaderId,
    currency: c.currency,
    itemsTotalFen: c.itemsTotal_fen,
    discountTotalFen: c.discountTotal_fen,
    shippingFen: c.shipping_fen,
    payableFen: c.payable_fen,
    couponIds: c.couponIds,
    pointsUsed: c.pointsUsed,
    createdAt: iso(c.created_at_ms),
    expiresAt: iso(c.expires_at_ms),
    orders: c.orders.map(orderView),
  };
}

export type CheckoutView = ReturnType<typeof checkoutView>;

/** The OpenAPI tag of the order routes; checkout's `POST /orders` is listed under it too. */
export const ORDERS_API_TAG = 'orders';
