import type { Kysely, Transaction } from 'kysely';
import type { OutboxTables } from '../events/index.ts';
import type { InventoryTables } from '../inventory/index.ts';
import type { JobsTables } from '../jobs/index.ts';
/** The cart module's tables; no other module names them. Amounts are BIGINT fen; times BIGINT ms since the epoch, UTC. */
export interface CartTables {
  cart_lines: CartLineRow;
}

/** The handle the cart module's functions take (the main database): its own tables, and the outbox and jobs it writes through the events and jobs modules. */
export type CartDb = Kysely<CartHandleTables>;
export type CartTransaction = Transaction<CartHandleTables>;
/** A cart hold (加购减库存) moves stock in the cart line's transaction, so the handle carries inventory's tables for inventory's functions; cart never names them. */
type CartHandleTables = CartTables & InventoryTables & OutboxTables & JobsTables;

export interface CartLineRow {
  buyer_id: number;
  activity_sku_id: number;
  quantity: number;
  selected: number;
  /** 加购减库存: until when the line's units are held for the buyer; null when nothing is held. */
  hold_expires_at_ms: number | null;
  added_at_ms: number;
  updated_at_ms: number;
}
