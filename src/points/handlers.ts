import { inTransaction, type DomainEvent, type EventBus } from '../events/index.ts';
import { ORDER_CANCELLED, ORDER_PAID, ORDER_REFUNDED, type OrderCancelled, type OrderPaid, type OrderRefunded } from '../orders/index.ts';
import type { Kysely } from 'kysely';
import type { EventsTables } from '../events/index.ts';
import type { JobsTables } from '../jobs/index.ts';
import type { PointsTables } from './tables.ts';
import { returnPointsOnRefund, settlePoints } from './index.ts';

export interface PointsDeps {
  db: Kysely<PointsTables & EventsTables & JobsTables>;
  now: () => number;
}

/** The points' side of order events: frozen points are deducted on payment, unfrozen on cancel, and returned in proportion on a refund. */
export function subscribePoints(bus: EventBus, deps: PointsDeps): void {
  bus.subscribe(ORDER_PAID, 'points.deduct', inTransaction(deps.db, async (trx, event: DomainEvent<OrderPaid>) => {
    await settlePoints(trx, event.payload.orderNo, 'deduct', deps.now());
  }));
  bus.subscribe(ORDER_CANCELLED, 'points.unfreeze', inTransaction(deps.db, async (trx, event: DomainEvent<OrderCancelled>) => {
    await settlePoints(trx, event.payload.orderNo, 'unfreeze', deps.now());
  }));
  bus.subscribe(ORDER_REFUNDED, 'points.return-on-refund', inTransaction(deps.db, async (trx, event: DomainEvent<OrderRefunded>) => {
    const { orderNo, refundNo, refundedLinesPayable_fen, payable_fen } = event.payload;
    if (payable_fen > 0) await returnPointsOnRefund(trx, orderNo, refundNo, Math.min(refundedLinesPayable_fen, payable_fen), payable_fen, deps.now());
  }));
}
