import type { Generated, Kysely, Transaction } from 'kysely';
import type { OutboxTables } from '../events/index.ts';
import type { CatalogTables } from '../catalog/index.ts';
import type { JobsTables } from '../jobs/index.ts';
import type { ReservationState } from './reservation-state.ts';

/** The inventory module's tables; no other module names them. Amounts are BIGINT fen; times BIGINT ms since the epoch, UTC. */
export interface InventoryTables {
  stock: StockRow;
  stock_reservations: StockReservationRow;
  stock_adjustments: StockAdjustmentRow;
}

/** The handle the inventory module's functions take (the main database): its own tables, and the outbox and jobs it writes through the events and jobs modules. */
export type InventoryDb = Kysely<InventoryTables & OutboxTables & JobsTables>;
export type InventoryTransaction = Transaction<InventoryTables & OutboxTables & JobsTables>;
/** 秒杀 loads and reconciles by activity, which it asks the catalog for on the same database. */
export type FlashSaleDb = Kysely<InventoryTables & CatalogTables & OutboxTables & JobsTables>;

export interface StockRow {
  activity_sku_id: number;
  total: number;
  available: number;
  reserved: number;
  sold: number;
  /** Units reserved or sold at the activity price, counted against activity_price_units. */
  activity_price_taken: Generated<number>;
  /** Non-null: this activity's Redis keys gate the available units, and the database path may not take them. */
  flash_sale_activity_id: Generated<number | null>;
  updated_at_ms: number;
}

export interface StockReservationRow {
  order_no: string;
  activity_sku_id: number;
  quantity: number;
  state: ReservationState;
  /** How many of its units took the activity price (stock-linked prices). */
  activity_price_units: Generated<number>;
  /** Whose reservation it is, where known (flash-sale reservations): rebuilds purchase limits in Redis. */
  buyer_id: Generated<number | null>;
  /** The cart hold some of its units came from (on-add-to-cart), and how many. */
  hold_key: Generated<string | null>;
  from_hold: Generated<number>;
  created_at_ms: number;
  updated_at_ms: number;
}

export interface StockAdjustmentRow {
  id: Generated<number>;
  activity_sku_id: number;
  delta: number;
  reason: string;
  actor: string;
  /** The caller's id for this adjustment: sending it again changes nothing. */
  request_id: string;
  total_after: number;
  available_after: number;
  created_at_ms: number;
}
