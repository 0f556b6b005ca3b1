import { inTransaction, type DomainEvent, type EventBus } from '../events/index.ts';
import { holdNoOf, ORDER_CANCELLED, ORDER_PAID, ORDER_REFUNDED, type OrderCancelled, type OrderPaid, type OrderRefunded } from '../orders/index.ts';
import type { Kysely } from 'kysely';
import type { EventsTables } from '../events/index.ts';
import type { JobsTables } from '../jobs/index.ts';
import type { PointsTables } from './tables.ts';
import { returnPointsOnRefund, endPointsFreeze } from './index.ts';

export interface PointsDeps {
  db: Kysely<PointsTables & EventsTables & JobsTables>;
  now: () => number;
}

/** The points' side of order events: frozen points are deducted on payment, unfrozen on cancel, and returned in proportion on a refund. */
export function subscribePoints(bus: EventBus, deps: PointsDeps): void {
  // A checkout's points are frozen under its number: the first of its orders paid deducts them.
  bus.subscribe(ORDER_PAID, 'points.deduct', inTransaction(deps.db, async (trx, event: DomainEvent<OrderPaid>) => {
    await endPointsFreeze(trx, holdNoOf(event.payload), 'deduct', deps.now());
  }));
  bus.subscribe(ORDER_CANCELLED, 'points.unfreeze', inTransaction(deps.db, async (trx, event: DomainEvent<OrderCancelled>) => {
    const { payload } = event;
    const holdNo = holdNoOf(payload);
    if (payload.wholeCheckout !== false) {
      await endPointsFreeze(trx, holdNo, 'unfreeze', deps.now());
      return;
    }
    // The checkout lives on through a paid order: the points were (or are now) deducted, and this
    // order's share comes back as a refund's would, in proportion to what of the checkout is closed.
    await endPointsFreeze(trx, holdNo, 'deduct', deps.now());
    if (payload.checkoutPayable_fen > 0) await returnPointsOnRefund(trx, holdNo, `cancel:${payload.orderNo}`, Math.min(payload.checkoutClosed_fen, payload.checkoutPayable_fen), payload.checkoutPayable_fen, deps.now());
  }));
  bus.subscribe(ORDER_REFUNDED, 'points.return-on-refund', inTransaction(deps.db, async (trx, event: DomainEvent<OrderRefunded>) => {
    const { payload } = event;
    const holdNo = holdNoOf(payload);
    // A checkout's figures when the event has them; an event written before checkouts has its order's, which were its checkout's.
    const closed_fen = payload.checkoutClosed_fen ?? payload.refundedLinesPayable_fen;
    const payable_fen = payload.checkoutPayable_fen ?? payload.payable_fen;
    // The refund may be consumed before order.paid's deduction (consumers are not ordered across event types).
    await endPointsFreeze(trx, holdNo, 'deduct', deps.now());
    if (payable_fen > 0) await returnPointsOnRefund(trx, holdNo, payload.refundNo, Math.min(closed_fen, payable_fen), payable_fen, deps.now());
  }));
}
