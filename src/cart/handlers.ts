import { inTransaction, type DomainEvent, type EventBus } from '../events/index.ts';
import type { JobHandler } from '../jobs/index.ts';
import { ORDER_PLACED, type OrderPlaced } from '../orders/index.ts';
import type { Kysely } from 'kysely';
import type { EventsTables } from '../events/index.ts';
import type { InventoryTables } from '../inventory/index.ts';
import type { JobsTables } from '../jobs/index.ts';
import type { CartTables } from './tables.ts';
import { CART_HOLD_EXPIRE_JOB, expireCartHold, removeOrderedLines } from './index.ts';

/** The cart's tables (and what its holds move), with the inbox its consumers write. */
export interface CartDeps {
  db: Kysely<CartTables & InventoryTables & EventsTables & JobsTables>;
  now: () => number;
}

/** The cart's side of order events: an order placed takes its lines out of the buyer's cart. */
export function subscribeCart(bus: EventBus, deps: CartDeps): void {
  bus.subscribe(ORDER_PLACED, 'cart.remove-ordered-lines', inTransaction(deps.db, async (trx, event: DomainEvent<OrderPlaced>) => {
    await removeOrderedLines(trx, event.payload.buyerId, event.payload.lines.map((line) => line.activitySkuId), event.payload.placed_at_ms);
  }));
}

/** The cart's jobs: a cart hold (加购锁库存) that ran out gives its units back. */
export function cartJobs(deps: CartDeps): Record<string, JobHandler> {
  return {
    [CART_HOLD_EXPIRE_JOB]: async (payload: { buyerId: number; activitySkuId: number; expires_at_ms: number }) => {
      await expireCartHold(deps.db, payload, deps.now());
    },
  };
}
