import type { Generated } from 'kysely';

/**
 * The row types of every table. Each table has one owning module (named beside it);
 * no module reads another module's tables, so each can move to its own database.
 * Amounts are BIGINT fen; times are BIGINT milliseconds since the epoch, UTC.
 */
export interface DB {
  merchants: MerchantRow; // catalog
  products: ProductRow; // catalog
  skus: SkuRow; // catalog
  activities: ActivityRow; // catalog
  activity_skus: ActivitySkuRow; // catalog
  buyers: BuyerRow; // buyers
  leaders: LeaderRow; // leaders
  stock: StockRow; // inventory
  stock_reservations: StockReservationRow; // inventory
  stock_adjustments: StockAdjustmentRow; // inventory
  cart_lines: CartLineRow; // cart
  orders: OrderRow; // orders (order shard)
  order_lines: OrderLineRow; // orders (order shard)
  purchase_counters: PurchaseCounterRow; // orders (order shard)
  idempotency_keys: IdempotencyKeyRow; // orders (order shard)
  price_protection_claims: PriceProtectionClaimRow; // orders (order shard)
  promotions: PromotionRow; // promotions
  shipping_rules: ShippingRuleRow; // promotions
  coupon_templates: CouponTemplateRow; // coupons
  coupons: CouponRow; // coupons
  coupon_issuance: CouponIssuanceRow; // coupons
  points_accounts: PointsAccountRow; // points
  points_journal: PointsJournalRow; // points
  payment_orders: PaymentOrderRow; // payments (order shard)
  payment_refunds: PaymentRefundRow; // payments (order shard)
  buyer_checkouts: BuyerCheckoutRow; // orders (order shard)
  reconciliation_runs: ReconciliationRunRow; // payments
  reconciliation_differences: ReconciliationDifferenceRow; // payments
  outbox_events: OutboxEventRow; // events (every database)
  jobs: JobRow; // jobs (every database)
  event_inbox: EventInboxRow; // events (every database)
  dead_letters: DeadLetterRow; // events (every database)
  consistency_repairs: ConsistencyRepairRow; // consistency (main database)
  revoked_tokens: RevokedTokenRow; // access (main database)
}

export interface MerchantRow {
  id: Generated<number>;
  name: string;
  created_at_ms: number;
}

export interface ProductRow {
  id: Generated<number>;
  merchant_id: number;
  title: string;
  category: string | null;
  created_at_ms: number;
  updated_at_ms: number;
}

export interface SkuRow {
  id: Generated<number>;
  product_id: number;
  merchant_id: number;
  title: string;
  list_price_fen: number;
  weight_g: number;
  created_at_ms: number;
  updated_at_ms: number;
}

export interface ActivityRow {
  id: Generated<number>;
  title: string;
  starts_at_ms: number;
  ends_at_ms: number;
  order_cutoff_at_ms: number;
  /** 'YYYY-MM-DD', the day goods reach the leaders. */
  pickup_date: string;
  inventory_mode: string;
  /** 秒杀: 1 when the activity's stock is served from Redis (if REDIS_URL is set). */
  hot: Generated<number>;
  created_at_ms: number;
  updated_at_ms: number;
}

export interface ActivitySkuRow {
  id: Generated<number>;
  activity_id: number;
  sku_id: number;
  price_fen: number;
  /** 限购: most units one buyer may hold across live orders; null means no limit. */
  purchase_limit: number | null;
  /** Stock-linked price: the activity price holds for the first N units sold; null means all. */
  activity_price_units: number | null;
  created_at_ms: number;
  updated_at_ms: number;
}

export interface BuyerRow {
  id: Generated<number>;
  name: string;
  member_level: number;
  created_at_ms: number;
}

export interface LeaderRow {
  id: Generated<number>;
  name: string;
  community: string;
  address: string;
  created_at_ms: number;
}

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
  state: string;
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

export interface OrderRow {
  order_no: string;
  buyer_id: number;
  leader_id: number;
  status: string;
  version: number;
  currency: string;
  items_total_fen: number;
  discount_total_fen: number;
  shipping_fen: number;
  payable_fen: number;
  /** JSON list of the coupon ids the order holds. */
  coupon_ids: string | null;
  points_used: number;
  remark: string | null;
  payment_no: string | null;
  paid_fen: number | null;
  cancel_reason: string | null;
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
  inventory_mode: string;
  unit_price_fen: number;
  quantity: number;
  subtotal_fen: number;
  discount_fen: number;
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
  order_no: string;
  state: string;
  response_status: number | null;
  response_body: string | null;
  /** Which claim holds the key; only that claim may complete, abandon or compensate. */
  lease_token: string | null;
  locked_until_ms: number;
  created_at_ms: number;
}

export interface OutboxEventRow {
  id: Generated<number>;
  event_id: string;
  event_type: string;
  aggregate_id: string;
  payload: string;
  created_at_ms: number;
  due_at_ms: number;
  locked_until_ms: number;
  locked_by: string | null;
  attempts: number;
  last_error: string | null;
  dead_at_ms: number | null;
}

/** A consumer handled this event; written in the transaction of the consumer's effect. */
export interface EventInboxRow {
  consumer: string;
  event_id: string;
  handled_at_ms: number;
}

/** An event a consumer failed on after its last attempt, kept for an admin to replay. */
export interface DeadLetterRow {
  id: Generated<number>;
  consumer: string;
  event_id: string;
  event_type: string;
  aggregate_id: string;
  payload: string;
  event_created_at_ms: number;
  attempts: number;
  last_error: string | null;
  dead_at_ms: number;
  replayed_at_ms: number | null;
}

export interface JobRow {
  id: Generated<number>;
  kind: string;
  job_key: string;
  payload: string;
  created_at_ms: number;
  due_at_ms: number;
  locked_until_ms: number;
  locked_by: string | null;
  attempts: number;
  max_attempts: number;
  last_error: string | null;
  dead_at_ms: number | null;
}

export interface PromotionRow {
  id: Generated<number>;
  name: string;
  merchant_id: number | null;
  scope: string;
  rule: string;
  priority: number;
  stacking: string;
  starts_at_ms: number;
  ends_at_ms: number;
  enabled: number;
  created_at_ms: number;
  updated_at_ms: number;
}

export interface ShippingRuleRow {
  id: Generated<number>;
  merchant_id: number;
  fulfilment: string;
  regions: string | null;
  charge: string;
  free_above_fen: number | null;
  created_at_ms: number;
}

export interface CouponTemplateRow {
  id: Generated<number>;
  name: string;
  issuer_merchant_id: number | null;
  scope: string;
  rule: string;
  valid_from_ms: number;
  valid_until_ms: number;
  per_buyer_limit: number;
  total_limit: number | null;
  issued: number;
  created_at_ms: number;
}

export interface CouponRow {
  id: Generated<number>;
  template_id: number;
  buyer_id: number;
  state: string;
  order_no: string | null;
  issued_at_ms: number;
  updated_at_ms: number;
}

export interface CouponIssuanceRow {
  template_id: number;
  buyer_id: number;
  issued: number;
}

export interface PointsAccountRow {
  buyer_id: number;
  balance: number;
  frozen: number;
  updated_at_ms: number;
}

export interface PointsJournalRow {
  id: Generated<number>;
  buyer_id: number;
  movement: string;
  points: number;
  order_no: string | null;
  dedupe_key: string;
  balance_after: number;
  frozen_after: number;
  note: string | null;
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

export interface PaymentOrderRow {
  pay_no: string;
  order_no: string;
  buyer_id: number;
  channel: string;
  method: string;
  amount_fen: number;
  currency: string;
  status: string;
  version: number;
  /** The order number while the payment is CREATED, null after: one open payment per order. */
  open_order_no: string | null;
  channel_trade_no: string | null;
  /** JSON of the PayAction the buyer's device was given. */
  pay_action: string | null;
  disposition: string | null;
  /** Refunds asked for and not failed: never more than the amount. */
  refund_committed_fen: number;
  refunded_fen: number;
  /** 1 when the channel says the trade can no longer be refunded (TRADE_FINISHED). */
  finished: number;
  expires_at_ms: number;
  created_at_ms: number;
  updated_at_ms: number;
  succeeded_at_ms: number | null;
  closed_at_ms: number | null;
}

export interface BuyerCheckoutRow {
  buyer_id: number;
  placed_orders: number;
}

export interface PaymentRefundRow {
  refund_no: string;
  pay_no: string;
  order_no: string;
  channel: string;
  amount_fen: number;
  reason: string;
  line_nos: string | null;
  request_key: string | null;
  /** sha256 of what the keyed request asked for; null for refunds the system makes (and those written before it was kept). */
  request_hash: string | null;
  requested_by: string;
  status: string;
  version: number;
  channel_refund_no: string | null;
  failure: string | null;
  created_at_ms: number;
  updated_at_ms: number;
  succeeded_at_ms: number | null;
}

export interface ReconciliationRunRow {
  id: Generated<number>;
  channel: string;
  bill_date: string;
  source: string;
  bill_rows: number;
  matched: number;
  differences: number;
  started_at_ms: number;
  finished_at_ms: number;
}

export interface ReconciliationDifferenceRow {
  id: Generated<number>;
  run_id: number;
  kind: string;
  item: string;
  pay_no: string;
  refund_no: string | null;
  channel_trade_no: string | null;
  ours_fen: number | null;
  channel_fen: number | null;
  ours_status: string | null;
  action: string;
  action_status: string;
  note: string | null;
}

/** One repair the consistency reconciler made: which check found what, and what was done. */
export interface ConsistencyRepairRow {
  id: Generated<number>;
  check_name: string;
  /** What was repaired: an order number, a pay number, … */
  item_key: string;
  action: string;
  detail: string | null;
  repaired_at_ms: number;
}

export interface RevokedTokenRow {
  token_id: string;
  /** When the token would have expired; the row can be dropped after. */
  expires_at_ms: number;
  revoked_at_ms: number;
  reason: string;
}
