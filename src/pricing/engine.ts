import { assert } from '../platform/errors.ts';
import { allocateFen, assertFen, CURRENCY, multiplyFen, sumFen } from '../platform/money.ts';
import { couponDiscount, couponFunding, type Funding, inScope, nthUnitDiscount, percentOf, PLATFORM_FUNDED, priceSegments, promotionFunding, thresholdDiscount } from './rules.ts';
import { shippingFee } from './shipping.ts';
import type { Coupon, Discount, MerchantTotals, NotApplied, PricedCart, PricedLine, PricingInput, PricingLimits, PricingLine, Promotion } from './types.ts';

export class PricingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PricingError';
  }
}

export const DEFAULT_LIMITS: PricingLimits = { platformCouponsPerOrder: 1, couponsPerMerchantPerOrder: 1 };
/** Most lines, promotions and coupons one pricing takes; beyond them the caller is wrong. */
export const MAX_PRICED_LINES = 200;
export const MAX_PROMOTIONS = 200;
export const MAX_COUPONS = 20;
/** 运费: the most one merchant's shipping may come to in one order; a rule that charges more is refused, naming the merchant. */
export const MAX_SHIPPING_FEE_FEN = 1_000_000;

/** A shipping rule would charge past MAX_SHIPPING_FEE_FEN (or past what an integer of fen can hold). */
export class ShippingFeeTooHigh extends PricingError {
  readonly merchantId: number;
  constructor(merchantId: number) {
    super(`merchant ${merchantId}'s shipping rule charges more than ${MAX_SHIPPING_FEE_FEN} fen`);
    this.name = 'ShippingFeeTooHigh';
    this.merchantId = merchantId;
  }
}

/** A line while it is being priced: what it still costs after the discounts given so far. */
interface Working {
  line: PricingLine;
  priced: PricedLine;
  amount_fen: number;
  promotedBy: 'none' | 'stackable' | 'exclusive';
}


/**
 * The pricing engine. In order: item prices (activity, member, stock-linked); promotions by
 * priority (N件M折 on its lines, threshold promotions on the amount their lines still cost,
 * exclusive ones alone on their lines); the buyer's coupons (merchant coupons, then the
 * platform's) on what is left; shipping per merchant; points up to their share. Every
 * order-level amount is allocated to lines by largest remainder, so lines sum to the order.
 * Each discount names its funder: a merchant's promotions and coupons are that merchant's
 * money and land only on its lines; platform promotions, platform coupons and points are the
 * platform's (平台补贴), split across every merchant's eligible lines.
 * Pure and deterministic: the same input gives the same answer.
 */
export function priceCart(input: PricingInput): PricedCart {
  checkInput(input);
  const work: Working[] = input.lines.map((line) => {
    const segments = priceSegments(line, input.buyer);
    const subtotal_fen = sumFen(segments.map((s) => multiplyFen(s.unitPrice_fen, s.quantity)));
    return {
      line,
      amount_fen: subtotal_fen,
      promotedBy: 'none',
      priced: {
        activitySkuId: line.activitySkuId,
        merchantId: line.merchantId,
        quantity: line.quantity,
        segments,
        subtotal_fen,
        discounts: [],
        discount_fen: 0,
        platformFunded_fen: 0,
        merchantFunded_fen: 0,
        shipping_fen: 0,
        payable_fen: 0,
      },
    };
  });
  const applied: Discount[] = [];
  const notApplied: NotApplied[] = [];

  for (const promotion of [...input.promotions].sort(byPriority)) {
    const outcome = applyPromotion(promotion, work, input.now_ms);
    if (typeof outcome === 'string') notApplied.push({ kind: 'promotion', id: promotion.id, reason: outcome });
    else applied.push(outcome);
  }
  applyCoupons(input, work, applied, notApplied);

  const merchants = [...new Set(work.map((w) => w.line.merchantId))].sort((a, b) => a - b);
  const undeliverable: number[] = [];
  for (const merchantId of merchants) {
    const lines = work.filter((w) => w.line.merchantId === merchantId);
    const fee = shippingFee(input.shippingRules, merchantId, lines.map((w) => w.line), input.buyer, sumFen(lines.map((w) => w.amount_fen)));
    if (fee !== undefined && !(Number.isSafeInteger(fee) && fee <= MAX_SHIPPING_FEE_FEN)) throw new ShippingFeeTooHigh(merchantId);
    if (fee === undefined) undeliverable.push(merchantId);
    else allocate(fee, lines, (w) => w.priced.subtotal_fen, (w, share) => (w.priced.shipping_fen = share));
  }
  if (undeliverable.length) throw new PricingError(`merchants ${undeliverable.join(', ')} do not deliver to ${input.buyer.region}`);

  const points = applyPoints(input, work, applied);
  return totals(work, merchants, applied, notApplied, points);
}

function checkInput(input: PricingInput): void {
  assert(input.lines.length > 0 && input.lines.length <= MAX_PRICED_LINES, () => `a priced cart has 1..${MAX_PRICED_LINES} lines`);
  assert(input.promotions.length <= MAX_PROMOTIONS, () => `at most ${MAX_PROMOTIONS} promotions`);
  assert(input.coupons.length <= MAX_COUPONS, () => `at most ${MAX_COUPONS} coupons`);
  const ids = new Set<number>();
  for (const line of input.lines) {
    assert(!ids.has(line.activitySkuId), () => `line ${line.activitySkuId} appears twice`);
    ids.add(line.activitySkuId);
    assert(Number.isSafeInteger(line.quantity) && line.quantity > 0, 'quantity must be a positive integer');
    for (const amount of [line.listPrice_fen, line.activityPrice_fen, line.weight_g]) assert(Number.isSafeInteger(amount) && amount >= 0, 'prices and weights are non-negative integers');
    const left = line.activityPriceUnitsLeft;
    assert(left === undefined || (Number.isSafeInteger(left) && left >= 0), 'units left at the activity price must be a non-negative integer');
    for (const m of line.memberPrices ?? []) assert(Number.isSafeInteger(m.price_fen) && m.price_fen >= 0 && Number.isSafeInteger(m.level), 'member prices are non-negative integers');
  }
}

function byPriority(a: Promotion, b: Promotion): number {
  return b.priority - a.priority || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

function activeReason(starts_ms: number, ends_ms: number, now_ms: number): 'not_started' | 'expired' | undefined {
  if (now_ms < starts_ms) return 'not_started';
  if (now_ms >= ends_ms) return 'expired';
  return undefined;
}

function applyPromotion(promotion: Promotion, work: Working[], now_ms: number): Discount | NotApplied['reason'] {
  const inactive = activeReason(promotion.starts_at_ms, promotion.ends_at_ms, now_ms);
  if (inactive) return inactive;
  const eligible = work.filter((w) => inScope(promotion.scope, w.line) && w.amount_fen > 0);
  if (eligible.length === 0) return 'no_eligible_lines';
  const open = eligible.filter((w) => w.promotedBy === 'none' || (w.promotedBy === 'stackable' && promotion.stacking === 'stackable'));
  if (open.length === 0) return 'not_stackable';

  const rule = promotion.rule;
  const funding = promotionFunding(promotion.scope);
  let total = 0;
  if (rule.kind === 'nth_unit') {
    for (const w of open) {
      const off = Math.min(nthUnitDiscount(rule, w.priced.segments), w.amount_fen);
      if (off > 0) {
        give(w, 'promotion', promotion.id, funding, off);
        w.promotedBy = promotion.stacking;
        total += off;
      }
    }
    if (total === 0) return 'threshold_not_reached';
  } else {
    const base = sumFen(open.map((w) => w.amount_fen));
    total = Math.min(thresholdDiscount(rule, base), base);
    if (total <= 0) return 'threshold_not_reached';
    allocate(total, open, (w) => w.amount_fen, (w, share) => share > 0 && give(w, 'promotion', promotion.id, funding, share));
    for (const w of open) w.promotedBy = promotion.stacking;
  }
  return { source: 'promotion', id: promotion.id, funder: funding.funder, amount_fen: assertFen(total, 'promotion discount') };
}

/** Merchant coupons first (they are the merchant's money), then the platform's; ties by id. */
function couponOrder(a: Coupon, b: Coupon): number {
  const rank = (coupon: Coupon) => (coupon.issuer.kind === 'merchant' ? coupon.issuer.merchantId : Number.MAX_SAFE_INTEGER);
  return rank(a) - rank(b) || (a.couponId < b.couponId ? -1 : a.couponId > b.couponId ? 1 : 0);
}

function applyCoupons(input: PricingInput, work: Working[], applied: Discount[], notApplied: NotApplied[]): void {
  const limits = input.limits ?? DEFAULT_LIMITS;
  const used = new Map<string, number>(); // 'platform' | merchant id → coupons used
  const seen = new Set<string>();
  for (const coupon of [...input.coupons].sort(couponOrder)) {
    const reject = (reason: NotApplied['reason']) => notApplied.push({ kind: 'coupon', id: coupon.couponId, reason });
    if (seen.has(coupon.couponId)) {
      reject('duplicate');
      continue;
    }
    seen.add(coupon.couponId);
    const inactive = activeReason(coupon.valid_from_ms, coupon.valid_until_ms, input.now_ms);
    if (inactive) {
      reject(inactive);
      continue;
    }
    const issuerKey = coupon.issuer.kind === 'platform' ? 'platform' : String(coupon.issuer.merchantId);
    const limit = coupon.issuer.kind === 'platform' ? limits.platformCouponsPerOrder : limits.couponsPerMerchantPerOrder;
    if ((used.get(issuerKey) ?? 0) >= limit) {
      reject('limit_used');
      continue;
    }
    const issuer = coupon.issuer;
    const ofIssuer = work.filter((w) => issuer.kind === 'platform' || w.line.merchantId === issuer.merchantId);
    if (ofIssuer.length === 0) {
      reject('wrong_merchant');
      continue;
    }
    const eligible = ofIssuer.filter((w) => inScope(coupon.scope, w.line) && w.amount_fen > 0);
    if (eligible.length === 0) {
      reject('no_eligible_lines');
      continue;
    }
    const off = couponDiscount(coupon.rule, sumFen(eligible.map((w) => w.amount_fen)));
    if (off <= 0) {
      reject('threshold_not_reached');
      continue;
    }
    const funding = couponFunding(issuer);
    allocate(off, eligible, (w) => w.amount_fen, (w, share) => share > 0 && give(w, 'coupon', coupon.couponId, funding, share));
    used.set(issuerKey, (used.get(issuerKey) ?? 0) + 1);
    applied.push({ source: 'coupon', id: coupon.couponId, funder: funding.funder, amount_fen: off });
  }
}

/** 积分抵扣: whole fen only, at most the policy's share of the goods payable, never past the balance. */
function applyPoints(input: PricingInput, work: Working[], applied: Discount[]): { used: number; discount_fen: number } {
  const request = input.points;
  const policy = input.pointsPolicy;
  if (!request || !policy || request.toUse <= 0) return { used: 0, discount_fen: 0 };
  assert(Number.isSafeInteger(policy.pointsPerYuan) && policy.pointsPerYuan > 0, 'points per yuan must be a positive integer');
  const spendable = Math.max(0, Math.min(request.toUse, request.available));
  const goods = sumFen(work.map((w) => w.amount_fen));
  const fen = Math.min(Math.floor((spendable * 100) / policy.pointsPerYuan), percentOf(goods, policy.maxShare_bp), goods);
  if (fen <= 0) return { used: 0, discount_fen: 0 };
  const used = Math.ceil((fen * policy.pointsPerYuan) / 100);
  assert(used <= spendable, 'points used must not exceed the points offered');
  // 积分 are the platform's liability, so what they take off is the platform's to fund.
  allocate(fen, work, (w) => w.amount_fen, (w, share) => share > 0 && give(w, 'points', 'points', PLATFORM_FUNDED, share));
  applied.push({ source: 'points', id: 'points', funder: 'platform', amount_fen: fen });
  return { used, discount_fen: fen };
}

function give(w: Working, source: Discount['source'], id: string, funding: Funding, amount_fen: number): void {
  assert(amount_fen <= w.amount_fen, () => `a discount may not exceed what line ${w.line.activitySkuId} still costs`);
  // A merchant's money pays only for its own goods: scopes and issuers keep it so, and this says it.
  if (funding.funder === 'merchant') assert(funding.merchantId === w.line.merchantId, () => `merchant ${funding.merchantId}'s ${source} ${id} may not land on merchant ${w.line.merchantId}'s line`);
  w.amount_fen -= amount_fen;
  w.priced.discount_fen += amount_fen;
  if (funding.funder === 'platform') w.priced.platformFunded_fen += amount_fen;
  else w.priced.merchantFunded_fen += amount_fen;
  const same = w.priced.discounts.find((d) => d.source === source && d.id === id);
  if (same) same.amount_fen += amount_fen;
  else w.priced.discounts.push({ source, id, funder: funding.funder, amount_fen });
}

/**
 * Splits an order-level amount over lines with the one largest-remainder function. Lines go
 * in by activity SKU, so a tie of remainders goes to the lower one whatever order the cart
 * lists its lines in: the same cart splits the same way at checkout, at refund and in settlement.
 */
function allocate(total_fen: number, lines: Working[], weight: (w: Working) => number, take: (w: Working, share: number) => unknown): void {
  if (total_fen === 0 || lines.length === 0) return;
  const ordered = [...lines].sort((a, b) => a.line.activitySkuId - b.line.activitySkuId);
  const shares = allocateFen(total_fen, ordered.map(weight));
  ordered.forEach((w, i) => take(w, shares[i]!));
}

function totals(work: Working[], merchants: number[], applied: Discount[], notApplied: NotApplied[], points: { used: number; discount_fen: number }): PricedCart {
  const lines = work.map((w) => {
    w.priced.payable_fen = assertFen(w.priced.subtotal_fen - w.priced.discount_fen + w.priced.shipping_fen, 'line payable');
    assert(w.priced.payable_fen >= 0 && w.priced.discount_fen <= w.priced.subtotal_fen, () => `line ${w.line.activitySkuId} is discounted below zero`);
    assert(w.priced.platformFunded_fen + w.priced.merchantFunded_fen === w.priced.discount_fen, () => `line ${w.line.activitySkuId}'s funded parts must add up to its discount`);
    return w.priced;
  });
  const sum = (pick: (l: PricedLine) => number, of = lines) => sumFen(of.map(pick));
  const byMerchant: MerchantTotals[] = merchants.map((merchantId) => {
    const mine = lines.filter((l) => l.merchantId === merchantId);
    return {
      merchantId,
      subtotal_fen: sum((l) => l.subtotal_fen, mine),
      discount_fen: sum((l) => l.discount_fen, mine),
      platformFunded_fen: sum((l) => l.platformFunded_fen, mine),
      merchantFunded_fen: sum((l) => l.merchantFunded_fen, mine),
      shipping_fen: sum((l) => l.shipping_fen, mine),
      payable_fen: sum((l) => l.payable_fen, mine),
    };
  });
  const cart: PricedCart = {
    currency: CURRENCY,
    lines,
    merchants: byMerchant,
    itemsTotal_fen: sum((l) => l.subtotal_fen),
    discountTotal_fen: sum((l) => l.discount_fen),
    platformFunded_fen: sum((l) => l.platformFunded_fen),
    merchantFunded_fen: sum((l) => l.merchantFunded_fen),
    shipping_fen: sum((l) => l.shipping_fen),
    payable_fen: sum((l) => l.payable_fen),
    applied,
    notApplied,
    points,
  };
  assert(cart.payable_fen === cart.itemsTotal_fen - cart.discountTotal_fen + cart.shipping_fen, 'order payable = items − discounts + shipping');
  assert(cart.discountTotal_fen === sumFen(applied.map((d) => d.amount_fen)), 'every applied discount is allocated to lines exactly');
  assert(cart.platformFunded_fen === sumFen(applied.filter((d) => d.funder === 'platform').map((d) => d.amount_fen)), 'the platform funds exactly the platform discounts applied');
  return cart;
}
