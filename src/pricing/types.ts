/**
 * What the pricing engine reads and what it answers. Amounts are integer fen, rates are
 * basis points (2000 bp = 20 %), times are epoch milliseconds. Nothing here does I/O.
 */

export interface PricingLine {
  /** The activity SKU; it names the line in every answer. */
  activitySkuId: number;
  skuId: number;
  merchantId: number;
  category: string | null;
  quantity: number;
  listPrice_fen: number;
  activityPrice_fen: number;
  weight_g: number;
  /** 会员价: the price for buyers of at least `level`. */
  memberPrices?: readonly { level: number; price_fen: number }[];
  /** Stock-linked price: only this many more units sell at the activity price, the rest at list price. */
  activityPriceUnitsLeft?: number;
}

/** How the goods are handed to the buyer: picked up at the leader's point, or delivered. */
export type Handover = 'pickup' | 'delivery';

export interface PricingBuyer {
  memberLevel: number;
  region: string;
  handover: Handover;
}

/** Where a promotion or coupon applies. */
export type Scope =
  | { kind: 'platform' }
  | { kind: 'merchant'; merchantId: number }
  | { kind: 'category'; category: string; merchantId?: number }
  | { kind: 'sku'; skuIds: readonly number[] };

export type PromotionRule =
  /** 满减: spend threshold, save off; with `repeat`, once per threshold up to `cap_fen`. */
  | { kind: 'amount_off'; threshold_fen: number; off_fen: number; repeat?: boolean; cap_fen?: number }
  /** 满折: spend threshold, get discount_bp off the whole amount. */
  | { kind: 'percent_off'; threshold_fen: number; discount_bp: number }
  /** 阶梯满减: the highest tier reached applies. */
  | { kind: 'tiered'; tiers: readonly { threshold_fen: number; off_fen: number }[] }
  /** N件M折: every n-th unit of one SKU gets discount_bp off (n = 2, 5000 bp: second item half price). */
  | { kind: 'nth_unit'; n: number; discount_bp: number };

export interface Promotion {
  id: string;
  name: string;
  /** Platform-wide, or a merchant's (category and SKU scopes narrow either). */
  scope: Scope;
  rule: PromotionRule;
  /** Higher first; ties by id. */
  priority: number;
  /** An exclusive promotion shares its lines with no other promotion. */
  stacking: 'exclusive' | 'stackable';
  starts_at_ms: number;
  ends_at_ms: number;
}

export type CouponRule =
  | { kind: 'fixed'; off_fen: number; threshold_fen: number }
  | { kind: 'percent'; discount_bp: number; cap_fen: number; threshold_fen: number };

export interface Coupon {
  couponId: string;
  templateId: string;
  /** Who gives it: the platform, or one merchant. At most one of each per order by default. */
  issuer: { kind: 'platform' } | { kind: 'merchant'; merchantId: number };
  scope: Scope;
  rule: CouponRule;
  valid_from_ms: number;
  valid_until_ms: number;
}

export interface PointsRequest {
  /** Points the buyer wants to spend. */
  toUse: number;
  /** Spendable balance (balance − frozen). */
  available: number;
}

export interface PointsPolicy {
  /** 积分: this many points are worth one yuan (100 fen). */
  pointsPerYuan: number;
  /** Points may pay at most this share of the order's goods payable. */
  maxShare_bp: number;
}

export interface ShippingRule {
  merchantId: number;
  handover: Handover;
  /** The regions it serves; absent means every region the merchant has no other rule for. */
  regions?: readonly string[];
  charge:
    | { kind: 'flat'; fee_fen: number }
    | { kind: 'by_weight'; first_g: number; first_fen: number; additional_g: number; additional_fen: number }
    | { kind: 'by_pieces'; first_pieces: number; first_fen: number; additional_pieces: number; additional_fen: number };
  /** 包邮: free when the merchant's goods payable reaches this. */
  freeAbove_fen?: number;
}

export interface PricingLimits {
  platformCouponsPerOrder: number;
  couponsPerMerchantPerOrder: number;
}

export interface PricingInput {
  lines: readonly PricingLine[];
  buyer: PricingBuyer;
  promotions: readonly Promotion[];
  coupons: readonly Coupon[];
  points?: PointsRequest;
  pointsPolicy?: PointsPolicy;
  shippingRules: readonly ShippingRule[];
  limits?: PricingLimits;
  now_ms: number;
}

export const NOT_APPLIED_REASONS = [
  'not_started',
  'expired',
  'no_eligible_lines',
  'wrong_merchant',
  'threshold_not_reached',
  'not_stackable',
  'limit_used',
  'duplicate',
] as const;
export type NotAppliedReason = (typeof NOT_APPLIED_REASONS)[number];

export interface NotApplied {
  kind: 'promotion' | 'coupon';
  id: string;
  reason: NotAppliedReason;
}

/**
 * Who gives up the money a discount takes off: the platform (平台补贴: its promotions, its
 * coupons, points) or the merchant whose line it is on (商家让利: that merchant's promotions
 * and coupons). Settlement pays a merchant the platform-funded part of its lines.
 */
export type Funder = 'platform' | 'merchant';

export interface Discount {
  source: 'promotion' | 'coupon' | 'points';
  id: string;
  funder: Funder;
  amount_fen: number;
}

export interface PriceSegment {
  quantity: number;
  unitPrice_fen: number;
  basis: 'activity' | 'member' | 'list';
}

export interface PricedLine {
  activitySkuId: number;
  merchantId: number;
  quantity: number;
  segments: PriceSegment[];
  subtotal_fen: number;
  discounts: Discount[];
  discount_fen: number;
  /** The parts of discount_fen the platform and the line's merchant fund; they add up to it exactly. */
  platformFunded_fen: number;
  merchantFunded_fen: number;
  shipping_fen: number;
  /** What the buyer pays for this line, shipping share included; also what a refund of it returns. */
  payable_fen: number;
}

export interface MerchantTotals {
  merchantId: number;
  subtotal_fen: number;
  discount_fen: number;
  platformFunded_fen: number;
  merchantFunded_fen: number;
  shipping_fen: number;
  payable_fen: number;
}

export interface PricedCart {
  currency: 'CNY';
  lines: PricedLine[];
  merchants: MerchantTotals[];
  itemsTotal_fen: number;
  discountTotal_fen: number;
  platformFunded_fen: number;
  merchantFunded_fen: number;
  shipping_fen: number;
  payable_fen: number;
  applied: Discount[];
  notApplied: NotApplied[];
  points: { used: number; discount_fen: number };
}
