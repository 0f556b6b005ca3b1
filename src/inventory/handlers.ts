import { transaction } from '../platform/db/retry.ts';
import { inTransaction, type DomainEvent, type EventBus } from '../events/index.ts';
import { holdNoOf, ORDER_CANCELLED, ORDER_PAID, ORDER_PLACED, ORDER_REFUNDED, type OrderCancelled, type OrderPaid, type OrderPlaced, type OrderRefunded } from '../orders/index.ts';
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
  // 秒杀: the orders exist, so the units Redis granted their checkout move in the stock row (the database catching up).
  bus.subscribe(ORDER_PLACED, 'inventory.apply-flash-sale-reservations', inTransaction(deps.db, async (trx, event: DomainEvent<OrderPlaced>) => {
    await applyPendingReservations(trx, holdNoOf(event.payload), deps.now());
  }));
  bus.subscribe(ORDER_PAID, 'inventory.confirm-reservation', inTransaction(deps.db, async (trx, event: DomainEvent<OrderPaid>) => {
    const holdNo = holdNoOf(event.payload);
    const skus = skusOf(event.payload.lines);
    const moved = await confirmReservation(trx, holdNo, deps.now(), skus);
    // Confirmed already, or confirmed and given back by a refund that ran first: units stand behind the order.
    const mine = (await reservationsOf(trx, holdNo)).filter((r) => skus === 'all' || skus.includes(r.activitySkuId));
    if (moved === 0 && !mine.some((r) => r.state === 'confirmed' || r.state === 'returned' || r.state === 'returning')) {
      // Paid, but no stock stands behind it (or it has only on-payment lines, deducted already): the reconciler and a person look.
      if (mine.length > 0 || skus === 'all') deps.log.error({ orderNo: event.payload.orderNo, holdNo }, 'paid order has no reserved stock to confirm');
    }
  }));
  // Not in one transaction with its inbox row: it calls Redis first. Each step checks the state it changes.
  bus.subscribe(ORDER_CANCELLED, 'inventory.release-reservation', async (event: DomainEvent<OrderCancelled>) => {
    const holdNo = holdNoOf(event.payload);
    if (event.payload.wholeCheckout === false) {
      // The checkout lives on through a paid order: this order's lines alone go back, as a refund's do.
      await giveBackLines(deps, holdNo, skusOf(event.payload.lines));
      return;
    }
    // Redis gives a flash sale's units back first; while it is out of reach this fails and the event is retried.
    if (deps.flashSale) await releaseFlashSaleReservations(deps.flashSale, deps.db, holdNo);
    await transaction(deps.db, (trx) => releaseReservation(trx, holdNo, deps.now()));
    // Units a payment deducted (on-payment lines) for an order that ended cancelled go back too.
    await returnSoldStock(deps.db, holdNo, 'all', deps.now());
    if (deps.flashSale) await returnFlashSaleStock(deps.flashSale, deps.db, holdNo, deps.now());
  });
  // 退款: the refunded lines' units go back to the activity (nothing is picked up before
  // fulfillment exists, so every paid line is still with the platform).
  // Not in one transaction with its inbox row: a SKU Redis serves (秒杀) gets the units in Redis
  // after the database commits them. Each step checks the state it changes, so a repeat is a no-op.
  bus.subscribe(ORDER_REFUNDED, 'inventory.return-refunded-stock', async (event: DomainEvent<OrderRefunded>) => {
    await giveBackLines(deps, holdNoOf(event.payload), event.payload.lines.map((line) => line.activitySkuId));
  });
}

/**
 * A paid order's lines back to the activity. Consumers are not ordered across event types (a
 * backlog, a retry, a broker's subjects): this may come before order.paid's confirmation.
 * Confirming is what payment does anyway (idempotent), so confirm first and every unit is found and given back.
 */
async function giveBackLines(deps: InventoryDeps, holdNo: string, activitySkuIds: readonly number[] | 'all'): Promise<void> {
  await transaction(deps.db, (trx) => confirmReservation(trx, holdNo, deps.now(), activitySkuIds));
  await returnSoldStock(deps.db, holdNo, activitySkuIds, deps.now());
  if (deps.flashSale) await returnFlashSaleStock(deps.flashSale, deps.db, holdNo, deps.now());
}

/** The order's activity SKUs; an event written before checkouts carried none and meant all of them. */
function skusOf(lines: readonly { activitySkuId: number }[] | undefined): number[] | 'all' {
  return lines ? lines.map((line) => line.activitySkuId) : 'all';
}
