import { inTransaction, type DomainEvent, type EventBus } from '../events/index.ts';
import { ORDER_CANCELLED, ORDER_PAID, ORDER_REFUNDED, type OrderCancelled, type OrderPaid, type OrderRefunded } from '../orders/index.ts';
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
  bus.subscribe(ORDER_PAID, 'coupons.use', inTransaction(deps.db, async (trx, event: DomainEvent<OrderPaid>) => {
    await useCoupons(trx, event.payload.orderNo, deps.now());
  }));
  bus.subscribe(ORDER_CANCELLED, 'coupons.return', inTransaction(deps.db, async (trx, event: DomainEvent<OrderCancelled>) => {
    await returnCoupons(trx, event.payload.orderNo, deps.now());
  }));
  bus.subscribe(ORDER_REFUNDED, 'coupons.return-on-refund', inTransaction(deps.db, async (trx, event: DomainEvent<OrderRefunded>) => {
    await returnCouponsOnRefund(trx, event.payload.orderNo, event.payload.fullyRefunded, deps.couponRefundPolicy, deps.now());
  }));
}
