import type { DomainEvent, EventBus } from '../events/index.ts';
import type { JobHandler } from '../jobs/index.ts';
import { ORDER_CANCELLED, ORDER_PRICE_PROTECTED, type OrderCancelled, type OrderPriceProtected } from '../orders/index.ts';
import { PAYMENT_QUERY_JOB, type PaymentCentre } from './centre.ts';
import { closeOpenAttempts, followPayment } from './pay.ts';
import { followRefund, payPriceProtection, REFUND_FOLLOW_JOB } from './refunds.ts';
import { applyToOrder, PAYMENT_APPLY_JOB } from './results.ts';

/** The payment centre's side of order events: a cancelled order's open trades are closed, and 价保 claims are paid out. */
export function subscribePayments(bus: EventBus, centre: PaymentCentre): void {
  // 超时取消 or cancel: the open channel trades are closed, so a late payment cannot succeed silently
  // (one that did is refunded). Outside a transaction: it calls the channels; a repeat finds them closed.
  bus.subscribe(ORDER_CANCELLED, 'payments.close-open-attempts', async (event: DomainEvent<OrderCancelled>) => {
    await closeOpenAttempts(centre, event.payload.orderNo);
  });
  // Outside a transaction: it calls the payment channel. The refund number comes from the order line, so a repeat finds the same refund.
  bus.subscribe(ORDER_PRICE_PROTECTED, 'payments.price-protection-payout', async (event: DomainEvent<OrderPriceProtected>) => {
    await payPriceProtection(centre, event.payload);
  });
}

/** The payment centre's jobs: asking a channel how a payment went, taking a success to its order, following a refund. */
export function paymentsJobs(centre: PaymentCentre): Record<string, JobHandler> {
  return {
    [PAYMENT_QUERY_JOB]: (payload: { payNo: string; attempt: number }) => followPayment(centre, payload),
    [PAYMENT_APPLY_JOB]: async (payload: { payNo: string }) => void (await applyToOrder(centre, payload.payNo)),
    [REFUND_FOLLOW_JOB]: (payload: { payNo: string; refundNo: string; attempt: number }) => followRefund(centre, payload),
  };
}
