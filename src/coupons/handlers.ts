import { inTransaction, type DomainEvent, type EventBus } from '../events/index.ts';
import { holdNoOf, ORDER_CANCELLED, ORDER_PAID, ORDER_REFUNDED, type OrderCancelled, type OrderPaid, type OrderRefunded } from '../orders/index.ts';
import type { Kysely } from 'kysely';
import type { EventsTables } from '../events/index.ts';
import type { JobsTables } from '../jobs/index.ts';
import type { CouponsTables } from './tables.ts';
import { returnCoupons, returnCouponsOnRefund, useCoupons, type CouponRefundPolicy } from './index.ts';

export interface CouponsDeps {
  db: Kysely<CouponsTables & EventsTables & JobsTables>;
  now: () => number;
  couponRefundPolicy: CouponRefundPolicy;
}

/** The coupons' side of order events: locked coupons are used on payment, given back on cancel, and per policy on a full refund. */
export function subscribeCoupons(bus: EventBus, deps: CouponsDeps): void {
  // A checkout's coupons are locked under its number (a platform coupon may discount several of its orders).
  bus.subscribe(ORDER_PAID, 'coupons.use', inTransaction(deps.db, async (trx, event: DomainEvent<OrderPaid>) => {
    await useCoupons(trx, holdNoOf(event.payload), deps.now());
  }));
  // Back only when the whole checkout is cancelled; an order cancelled beside a paid one leaves them used.
  bus.subscribe(ORDER_CANCELLED, 'coupons.return', inTransaction(deps.db, async (trx, event: DomainEvent<OrderCancelled>) => {
    if (event.payload.wholeCheckout !== false) await returnCoupons(trx, holdNoOf(event.payload), deps.now());
  }));
  bus.subscribe(ORDER_REFUNDED, 'coupons.return-on-refund', inTransaction(deps.db, async (trx, event: DomainEvent<OrderRefunded>) => {
    const { payload } = event;
    await returnCouponsOnRefund(trx, holdNoOf(payload), payload.checkoutFullyRefunded ?? payload.fullyRefunded, deps.couponRefundPolicy, deps.now());
  }));
}
