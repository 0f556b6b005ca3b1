import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { priceCart } from './index.ts';
import type { Coupon, PricingInput, Promotion, Scope } from './types.ts';

const NOW = Date.UTC(2026, 10, 24, 12);
const fen = (max: number) => fc.integer({ min: 0, max });

const scope: fc.Arbitrary<Scope> = fc.oneof(
  fc.constant<Scope>({ kind: 'platform' }),
  fc.integer({ min: 1, max: 3 }).map<Scope>((merchantId) => ({ kind: 'merchant', merchantId })),
  fc.constantFrom('fruit', 'eggs').map<Scope>((category) => ({ kind: 'category', category })),
  fc.array(fc.integer({ min: 1, max: 12 }), { maxLength: 4 }).map<Scope>((skuIds) => ({ kind: 'sku', skuIds })),
);

const promotion: fc.Arbitrary<Promotion> = fc.record({
  id: fc.string({ minLength: 1, maxLength: 4 }),
  name: fc.constant('p'),
  scope,
  rule: fc.oneof(
    fc.record({ kind: fc.constant('amount_off' as const), threshold_fen: fen(50_000), off_fen: fen(20_000), repeat: fc.boolean(), cap_fen: fc.option(fen(50_000), { nil: undefined }) }),
    fc.record({ kind: fc.constant('percent_off' as const), threshold_fen: fen(50_000), discount_bp: fc.integer({ min: 0, max: 10_000 }) }),
    fc.record({ kind: fc.constant('tiered' as const), tiers: fc.array(fc.record({ threshold_fen: fen(50_000), off_fen: fen(20_000) }), { maxLength: 4 }) }),
    fc.record({ kind: fc.constant('nth_unit' as const), n: fc.integer({ min: 2, max: 4 }), discount_bp: fc.integer({ min: 0, max: 10_000 }) }),
  ),
  priority: fc.integer({ min: 0, max: 5 }),
  stacking: fc.constantFrom('exclusive' as const, 'stackable' as const),
  starts_at_ms: fc.constantFrom(NOW - 1000, NOW + 1000),
  ends_at_ms: fc.constantFrom(NOW, NOW + 10_000),
});

const coupon: fc.Arbitrary<Coupon> = fc.record({
  couponId: fc.string({ minLength: 1, maxLength: 4 }),
  templateId: fc.constant('t'),
  issuer: fc.oneof(fc.constant({ kind: 'platform' as const }), fc.integer({ min: 1, max: 3 }).map((merchantId) => ({ kind: 'merchant' as const, merchantId }))),
  scope,
  rule: fc.oneof(
    fc.record({ kind: fc.constant('fixed' as const), off_fen: fen(20_000), threshold_fen: fen(30_000) }),
    fc.record({ kind: fc.constant('percent' as const), discount_bp: fc.integer({ min: 0, max: 10_000 }), cap_fen: fen(20_000), threshold_fen: fen(30_000) }),
  ),
  valid_from_ms: fc.constantFrom(NOW - 1000, NOW + 1000),
  valid_until_ms: fc.constantFrom(NOW, NOW + 10_000),
});

const input: fc.Arbitrary<PricingInput> = fc
  .record({
    lines: fc.uniqueArray(
      fc.record({
        activitySkuId: fc.integer({ min: 1, max: 12 }),
        merchantId: fc.integer({ min: 1, max: 3 }),
        category: fc.constantFrom('fruit', 'eggs', null),
        quantity: fc.integer({ min: 1, max: 99 }),
        listPrice_fen: fen(100_000),
        activityPrice_fen: fen(100_000),
        weight_g: fen(5_000),
        activityPriceUnitsLeft: fc.option(fc.integer({ min: 0, max: 50 }), { nil: undefined }),
        memberPrices: fc.array(fc.record({ level: fc.integer({ min: 0, max: 3 }), price_fen: fen(100_000) }), { maxLength: 2 }),
      }),
      { minLength: 1, maxLength: 12, selector: (l) => l.activitySkuId },
    ),
    memberLevel: fc.integer({ min: 0, max: 3 }),
    promotions: fc.uniqueArray(promotion, { maxLength: 10, selector: (p) => p.id }),
    coupons: fc.uniqueArray(coupon, { maxLength: 5, selector: (drawn) => drawn.couponId }),
    toUse: fc.integer({ min: 0, max: 100_000 }),
    available: fc.integer({ min: 0, max: 100_000 }),
    pointsPerYuan: fc.constantFrom(1, 10, 100, 1000),
    maxShare_bp: fc.integer({ min: 0, max: 10_000 }),
  })
  .map(({ lines, memberLevel, promotions, coupons, toUse, available, pointsPerYuan, maxShare_bp }) => ({
    lines: lines.map((l) => ({ ...l, skuId: l.activitySkuId })),
    buyer: { memberLevel, region: 'SH', handover: 'pickup' as const },
    promotions,
    coupons,
    points: { toUse, available },
    pointsPolicy: { pointsPerYuan, maxShare_bp },
    shippingRules: [1, 2, 3].map((merchantId) => ({
      merchantId,
      handover: 'pickup' as const,
      charge: { kind: 'by_weight' as const, first_g: 1000, first_fen: 100 * merchantId, additional_g: 1000, additional_fen: 50 },
      freeAbove_fen: 20_000,
    })),
    now_ms: NOW,
  }));

describe('pricing properties over random carts, promotions, coupons and points', () => {
  it('no negative amount; discounts never exceed the subtotal; every allocation sums exactly', () => {
    fc.assert(
      fc.property(input, (i) => {
        const cart = priceCart(i);
        for (const l of cart.lines) {
          expect(l.payable_fen).toBeGreaterThanOrEqual(0);
          expect(l.discount_fen).toBeLessThanOrEqual(l.subtotal_fen);
          expect(l.discounts.reduce((s, d) => s + d.amount_fen, 0)).toBe(l.discount_fen);
          for (const d of l.discounts) expect(d.amount_fen).toBeGreaterThan(0);
        }
        expect(cart.lines.reduce((s, l) => s + l.payable_fen, 0)).toBe(cart.payable_fen);
        expect(cart.merchants.reduce((s, m) => s + m.payable_fen, 0)).toBe(cart.payable_fen);
        expect(cart.discountTotal_fen).toBeLessThanOrEqual(cart.itemsTotal_fen);
        for (const a of cart.applied) {
          const allocated = cart.lines.flatMap((l) => l.discounts).filter((d) => d.source === a.source && d.id === a.id).reduce((s, d) => s + d.amount_fen, 0);
          expect(allocated).toBe(a.amount_fen);
        }
        expect(cart.points.used).toBeLessThanOrEqual(Math.min(i.points!.toUse, i.points!.available));
        // every promotion and coupon is either applied or has a reason
        expect(cart.applied.filter((a) => a.source !== 'points').length + cart.notApplied.length).toBe(i.promotions.length + i.coupons.length);
      }),
      { numRuns: 500 },
    );
  });

  it('is deterministic, whatever order promotions and coupons arrive in', () => {
    fc.assert(
      fc.property(input, (i) => {
        const first = priceCart(i);
        expect(priceCart(structuredClone(i))).toEqual(first);
        const shuffled = { ...i, promotions: [...i.promotions].reverse(), coupons: [...i.coupons].reverse() };
        const again = priceCart(shuffled);
        expect(again.payable_fen).toBe(first.payable_fen);
        expect(again.lines).toEqual(first.lines);
      }),
      { numRuns: 300 },
    );
  });
});
