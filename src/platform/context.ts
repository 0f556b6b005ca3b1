import type { Logger } from 'pino';
import type { FlashSale } from '../inventory/flash-sale/index.ts';
import type { Db } from './db/database.ts';
import type { OrderShards } from './shards.ts';

/** What the domain flows need from the running platform; built once in app.ts. */
export interface Platform {
  /** Catalog, inventory, cart, buyers and leaders. */
  db: Db;
  /** Orders, their idempotency keys and counters, by buyer. */
  shards: OrderShards;
  now: () => number;
  nextOrderNo: (slot: number, now_ms: number) => string;
  paymentTimeout_ms: number;
  /** Tells the relay that a commit left events for it. */
  wake: () => void;
  log: Logger;
  /** Per-buyer limits on unpaid orders (orders/buyer-limits.ts); their defaults when absent. */
  buyerLimits?: { maxOpenOrders: number; maxUnpaidUnitsPerSku: number } | undefined;
  /** 秒杀 through Redis, when REDIS_URL is set; without it hot activities are served by the database. */
  flashSale?: FlashSale | undefined;
}
