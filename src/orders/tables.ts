import type { Kysely, Transaction } from 'kysely';
import type { OutboxTables } from '../events/index.ts';
import type { JobsTables } from '../jobs/index.ts';
import type { InventoryMode } from '../catalog/index.ts';
import type { CancelReason, OrderStatus } from './state.ts';

/** An idempotency key's claim: in progress under a lease, or completed with its answer. */
export type IdempotencyKeyState = 'in_progress' | 'completed';

/** The orders module's tables; no other module names them. Amounts are BIGINT fen; times BIGINT ms since the epoch, UTC. */
export interface OrdersTables {
  checkouts: CheckoutRow;
  orders: OrderRow;
  order_lines: OrderLineRow;
  purchase_counters: PurchaseCounterRow;
  idempotency_keys: IdempotencyKeyRow;
  price_protection_claims: PriceProtectionClaimRow;
  buyer_checkouts: BuyerCheckoutRow;
}

/** The handle the orders module's functions take (an order shard): its own tables, and the outbox and jobs it writes through the events and jobs modules. */
export type OrdersDb = Kysely<OrdersTables & OutboxTables & JobsTables>;
export type OrdersTransaction = Transaction<OrdersTables & OutboxTables & JobsTables>;

/**
 * 拆单: one buyer's submission, paid once; it holds one order per merchant. Written with its orders
 * and never changed: whether it is unpaid, paid or cancelled is what its orders are. Its number is
 * what the checkout's holds (stock, coupons, points) are kept under.
 */
export interface CheckoutRow {
  checkout_no: string;
  buyer_id: number;
  leader_id: number;
  currency: string;
  order_count: number;
  items_total_fen: number;
  discount_total_fen: number;
  shipping_fen: number;
  payable_fen: number;
  /** JSON list of the coupon ids the checkout holds (a platform coupon may span its orders). */
  coupon_ids: string | null;
  points_used: number;
  created_at_ms: number;
  expires_at_ms: number;
}

export interface OrderRow {
  order_no: string;
  /** The checkout this order is one merchant's part of. */
  checkout_no: string;
  /** The seller of record: every line of the order is this merchant's. */
  merchant_id: number;
  buyer_id: number;
  leader_id: number;
  status: OrderStatus;
  version: number;
  currency: string;
  items_total_fen: number;
  discount_total_fen: number;
  shipping_fen: number;
  payable_fen: number;
  /** JSON list of the coupon ids that discount this order's lines (held by its checkout). */
  coupon_ids: string | null;
  /** The points whose discount landed on this order's lines (frozen by its checkout). */
  points_used: number;
  remark: string | null;
  payment_no: string | null;
  paid_fen: number | null;
  cancel_reason: CancelReason | null;
  created_at_ms: number;
  updated_at_ms: number;
  expires_at_ms: number;
  paid_at_ms: number | null;
  cancelled_at_ms: number | null;
  /** What refunds have returned so far. */
  refunded_fen: number;
}

export interface OrderLineRow {
  order_no: string;
  line_no: number;
  activity_id: number;
  activity_sku_id: number;
  sku_id: number;
  merchant_id: number;
  title: string;
  /** How the line's stock is taken: on_order (reserved at checkout) or on_payment (deducted at payment). */
  inventory_mode: InventoryMode;
  unit_price_fen: number;
  quantity: number;
  subtotal_fen: number;
  discount_fen: number;
  /** The part of discount_fen the platform funds (平台补贴: platform promotions, platform coupons, points); settlement pays it to the merchant. */
  platform_funded_fen: number;
  /** The part the merchant funds (商家让利): its own promotions and coupons. */
  merchant_funded_fen: number;
  /** This line's share of its merchant's shipping. */
  shipping_fen: number;
  /** subtotal − discounts + shipping share: what the buyer pays for it, and what refunding it returns. */
  payable_fen: number;
  /** JSON list of {source, id, amount_fen}: every discount allocated to this line. */
  discounts: string | null;
  /** JSON list of {quantity, unitPrice_fen, basis} when the line has more than one unit price. */
  price_segments: string | null;
  /** When a refund returned this line's payable; a line is refunded once, whole. */
  refunded_at_ms: number | null;
}

export interface PurchaseCounterRow {
  buyer_id: number;
  activity_sku_id: number;
  quantity: number;
}

export interface IdempotencyKeyRow {
  buyer_id: number;
  idem_key: string;
  request_hash: string;
  /** The checkout number the key's claim fixed. */
  checkout_no: string;
  state: IdempotencyKeyState;
  response_status: number | null;
  response_body: string | null;
  /** Which claim holds the key; only that claim may complete, abandon or compensate. */
  lease_token: string | null;
  locked_until_ms: number;
  created_at_ms: number;
}

export interface PriceProtectionClaimRow {
  order_no: string;
  line_no: number;
  buyer_id: number;
  activity_sku_id: number;
  paid_unit_price_fen: number;
  current_unit_price_fen: number;
  quantity: number;
  amount_fen: number;
  claimed_at_ms: number;
}

export interface BuyerCheckoutRow {
  buyer_id: number;
  placed_orders: number;
}
