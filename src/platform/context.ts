import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { OrderShards } from './shards.ts';

/**
 * What the domain flows need from the running platform; built once in app.ts. A module names
 * the tables it needs on each handle (its own, or those of the modules it asks), so the handle
 * it gets shows only those.
 */
export interface Platform<Main, Shard> {
  /** Catalog, inventory, cart, buyers, leaders, promotions, coupons, points, … */
  db: Kysely<Main>;
  /** Orders, their idempotency keys, counters and payments, by buyer. */
  shards: OrderShards<Shard>;
  now: () => number;
  nextOrderNo: (slot: number, now_ms: number) => string;
  paymentTimeout_ms: number;
  /** Tells the relay that a commit left events for it. */
  wake: () => void;
  log: Logger;
  /** Per-buyer limits on unpaid orders (orders/buyer-limits.ts); their defaults when absent. */
  buyerLimits?: { maxOpenOrders: number; maxUnpaidUnitsPerSku: number } | undefined;
}
