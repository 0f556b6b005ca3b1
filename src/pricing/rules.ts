import { assert } from '../platform/errors.ts';
import { assertFen } from '../platform/money.ts';
import type { Coupon, CouponRule, Funder, PricingBuyer, PricingLine, PriceSegment, PromotionRule, Scope } from './types.ts';

export const BASIS_POINTS = 10_000;

/** amount × bp / 10000, rounded down: a discount never exceeds what its rate says. */
export function percentOf(amount_fen: number, bp: number): number {
  assert(Number.isSafeInteger(bp) && bp >= 0 && bp <= BASIS_POINTS, () => `rate must be 0..10000 bp, got ${bp}`);
  return assertFen(Math.floor((amount_fen * bp) / BASIS_POINTS), 'percentage');
}

/**
 * The merchant a scope belongs to; null for platform-wide scopes (platform, a category of
 * every merchant, a list of SKUs). The promotions module files a promotion under it, and
 * the engine has that merchant fund it, so loading and funding cannot disagree.
 */
export function merchantOfScope(scope: Scope): number | null {
  if (scope.kind === 'merchant') return scope.merchantId;
  if (scope.kind === 'category') return scope.merchantId ?? null;
  return null;
}

/** Who funds a discount, and for a merchant, which one: its lines are the only ones it may land on. */
export type Funding = { funder: Extract<Funder, 'platform'> } | { funder: Extract<Funder, 'merchant'>; merchantId: number };

export const PLATFORM_FUNDED: Funding = { funder: 'platform' };

/** A promotion is funded by the merchant its scope belongs to, else by the platform. */
export function promotionFunding(scope: Scope): Funding {
  const merchantId = merchantOfScope(scope);
  return merchantId === null ? PLATFORM_FUNDED : { funder: 'merchant', merchantId };
}

/** A coupon is funded by its issuer, whatever its scope. */
export function couponFunding(issuer: Coupon['issuer']): Funding {
  return issuer.kind === 'platform' ? PLATFORM_FUNDED : { funder: 'merchant', merchantId: issuer.merchantId };
}

export function inScope(scope: Scope, line: PricingLine): boolean {
  switch (scope.kind) {
    case 'platform':
      return true;
    case 'merchant':
      return line.merchantId === scope.merchantId;
    case 'category':
      return line.category === scope.category && (scope.merchantId === undefined || line.merchantId === scope.merchantId);
    case 'sku':
      return scope.skuIds.includes(line.skuId);
  }
}

/**
 * The units of a line and what each costs the buyer: the activity price (or the member
 * price, if lower) for as many units as the stock-linked allowance still has, the list price
 * (or member price, if lower) for the rest.
 */
export function priceSegments(line: PricingLine, buyer: PricingBuyer): PriceSegment[] {
  const member = (line.memberPrices ?? [])
    .filter((m) => m.level <= buyer.memberLevel)
    .reduce<number | undefined>((best, m) => (best === undefined || m.price_fen < best ? m.price_fen : best), undefined);
  const best = (price_fen: number, basis: PriceSegment['basis']): Pick<PriceSegment, 'unitPrice_fen' | 'basis'> =>
    member !== undefined && member < price_fen ? { unitPrice_fen: member, basis: 'member' } : { unitPrice_fen: price_fen, basis };
  const atActivity = Math.min(line.quantity, line.activityPriceUnitsLeft ?? line.quantity);
  const segments: PriceSegment[] = [];
  if (atActivity > 0) segments.push({ quantity: atActivity, ...best(line.activityPrice_fen, 'activity') });
  if (line.quantity > atActivity) segments.push({ quantity: line.quantity - atActivity, ...best(line.listPrice_fen, 'list') });
  return segments;
}

/** The discount a threshold promotion gives on `base_fen` (0 when its threshold is not reached). */
export function thresholdDiscount(rule: Exclude<PromotionRule, { kind: 'nth_unit' }>, base_fen: number): number {
  switch (rule.kind) {
    case 'amount_off': {
      if (base_fen < rule.threshold_fen || rule.threshold_fen <= 0) return 0;
      if (!rule.repeat) return rule.off_fen;
      const times = Math.floor(base_fen / rule.threshold_fen);
      return Math.min(times * rule.off_fen, rule.cap_fen ?? Number.MAX_SAFE_INTEGER);
    }
    case 'percent_off':
      return base_fen >= rule.threshold_fen ? percentOf(base_fen, rule.discount_bp) : 0;
    case 'tiered': {
      let off = 0;
      for (const tier of rule.tiers) if (base_fen >= tier.threshold_fen && tier.off_fen > off) off = tier.off_fen;
      return off;
    }
  }
}

/** N件M折 on one line: every n-th unit, priced at the line's cheapest unit, gets the rate off. */
export function nthUnitDiscount(rule: Extract<PromotionRule, { kind: 'nth_unit' }>, segments: readonly PriceSegment[]): number {
  assert(Number.isSafeInteger(rule.n) && rule.n >= 2, 'N件M折 needs n of at least 2');
  const quantity = segments.reduce((q, s) => q + s.quantity, 0);
  const cheapest = Math.min(...segments.map((s) => s.unitPrice_fen));
  return Math.floor(quantity / rule.n) * percentOf(cheapest, rule.discount_bp);
}

export function couponDiscount(rule: CouponRule, base_fen: number): number {
  if (base_fen <= 0 || base_fen < rule.threshold_fen) return 0;
  if (rule.kind === 'fixed') return Math.min(rule.off_fen, base_fen);
  return Math.min(percentOf(base_fen, rule.discount_bp), rule.cap_fen, base_fen);
}
