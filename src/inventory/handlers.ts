import { inTransaction, type DomainEvent, type EventBus } from '../events/index.ts';
import { ORDER_CANCELLED, ORDER_PAID, ORDER_PLACED, ORDER_REFUNDED, type OrderCancelled, type OrderPaid, type OrderPlaced, type OrderRefunded } from '../orders/index.ts';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { CatalogTables } from '../catalog/index.ts';
import type { EventsTables } from '../events/index.ts';
import type { JobsTables } from '../jobs/index.ts';
import type { FlashSale } from './flash-sale/index.ts';
import type { InventoryTables } from './tables.ts';
import { applyPendingReservations, releaseFlashSaleReservations, returnFlashSaleStock } from './flash-sale/index.ts';
import { confirmReservation, releaseReservation, reservationsOf, returnSoldStock } from './index.ts';

/** Inventory's tables with the inbox its consumers write, and Redis for flash sales. */
export interface InventoryDeps {
  db: Kysely<InventoryTables & CatalogTables & EventsTables & JobsTables>;
  now: () => number;
  log: Logger;
  flashSale?: FlashSale | undefined;
}

/**
 * The stock's side of order events. Delivery is at least once; a consumer whose effect is rows in
 * the main database runs in one transaction with its inbox row (inTransaction), so it applies once;
 * those that call Redis too are idempotent step by step and recorded after.
 */
export function subscribeInventory(bus: EventBus, deps: InventoryDeps): void {
  // 秒杀: the order exists, so the units Redis granted it move in the stock row (the database catching up).
  bus.subscribe(ORDER_PLACED, 'inventory.apply-flash-sale-reservations', inTransaction(deps.db, async (trx, event: DomainEvent<OrderPlaced>) => {
    await applyPendingReservations(trx, event.payload.orderNo, deps.now());
  }));
  bus.subscribe(ORDER_PAID, 'inventory.confirm-reservation', inTransaction(deps.db, async (trx, event: DomainEvent<OrderPaid>) => {
    const moved = await confirmReservation(trx, event.payload.orderNo, deps.now());
    // Confirmed already, or confirmed and given back by a refund that ran first: units stand behind the order.
    if (moved === 0 && !(await reservationsOf(trx, event.payload.orderNo)).some((r) => r.state === 'confirmed' || r.state === 'returned' || r.state === 'returning')) {
      // Paid, but no stock stands behind it: the reconciler and a person must look.
      deps.log.error({ orderNo: event.payload.orderNo }, 'paid order has no reserved stock to confirm');
    }
  }));
  // Not in one transaction with its inbox row: it calls Redis first. Each step checks the state it changes.
  bus.subscribe(ORDER_CANCELLED, 'inventory.release-reservation', async (event: DomainEvent<OrderCancelled>) => {
    const { orderNo } = event.payload;
    // Redis gives a flash sale's units back first; while it is out of reach this fails and the event is retried.
    if (deps.flashSale) await releaseFlashSaleReservations(deps.flashSale, deps.db, orderNo);
    await releaseReservation(deps.db, orderNo, deps.now());
    // Units a payment deducted (on-payment lines) for an order that ended cancelled go back too.
    await returnSoldStock(deps.db, orderNo, 'all', deps.now());
    if (deps.flashSale) await returnFlashSaleStock(deps.flashSale, deps.db, orderNo, deps.now());
  });
  // 退款: the refunded lines' units go back to the activity (nothing is picked up before
  // fulfillment exists, so every paid line is still with the platform).
  // Not in one transaction with its inbox row: a SKU Redis serves (秒杀) gets the units in Redis
  // after the database commits them. Each step checks the state it changes, so a repeat is a no-op.
  bus.subscribe(ORDER_REFUNDED, 'inventory.return-refunded-stock', async (event: DomainEvent<OrderRefunded>) => {
    const { orderNo, lines } = event.payload;
    // Consumers are not ordered across event types (a backlog, a retry, a broker's subjects): the
    // refund may come before order.paid's confirmation. Confirming is what payment does anyway
    // (idempotent), so confirm first and every refunded unit is found and given back.
    await confirmReservation(deps.db, orderNo, deps.now());
    await returnSoldStock(deps.db, orderNo, lines.map((line) => line.activitySkuId), deps.now());
    if (deps.flashSale) await returnFlashSaleStock(deps.flashSale, deps.db, orderNo, deps.now());
  });
}
