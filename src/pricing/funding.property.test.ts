import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { priceCart } from './index.ts';
import { inScope } from './rules.ts';
import type { Coupon, Discount, Funder, PricedCart, PricedLine, PricingInput, PricingLine, Promotion, Scope, ShippingRule } from './types.ts';

/**
 * Who pays for a discount, over random carts of one to five merchants with platform and
 * merchant promotions, coupons and points. Settlement pays each merchant the platform-funded
 * part of its lines, so these sums must hold to the fen: per line platform + merchant funded =
 * discount; the platform funds exactly the platform discounts applied, per discount; a
 * merchant's discount stays on its own lines; each merchant's lines make its totals; and the
 * platform's discounts are split across merchants by largest remainder.
 */

const NOW = Date.UTC(2026, 11, 7, 12);
const MAX_MERCHANTS = 5;
const MAX_LINES_PER_MERCHANT = 3;
const fen = (max: number) => fc.integer({ min: 0, max });
const CATEGORIES = ['fruit', 'eggs'] as const;

interface CartShape {
  merchantIds: number[];
  lines: PricingLine[];
}

/** One to five merchants, each with one to three lines, listed in a random order under random activity SKU ids. */
const cartShape: fc.Arbitrary<CartShape> = fc
  .uniqueArray(fc.integer({ min: 1, max: 9 }), { minLength: 1, maxLength: MAX_MERCHANTS })
  .chain((merchantIds) =>
    fc
      .tuple(
        ...merchantIds.map((merchantId) =>
          fc.array(
            fc.record({
              merchantId: fc.constant(merchantId),
              category: fc.constantFrom<string | null>(...CATEGORIES, null),
              quantity: fc.integer({ min: 1, max: 9 }),
              // Small prices make many exact ties of remainders, the case the tie rule is for.
              activityPrice_fen: fc.oneof(fen(30_000), fc.constantFrom(0, 1, 3, 100, 1000)),
              listPrice_fen: fen(30_000),
              weight_g: fen(3_000),
              sortKey: fc.double({ noNaN: true }),
            }),
            { minLength: 1, maxLength: MAX_LINES_PER_MERCHANT },
          ),
        ),
      )
      .chain((perMerchant) => {
        const drawn = perMerchant.flat().sort((a, b) => a.sortKey - b.sortKey);
        return fc.uniqueArray(fc.integer({ min: 1, max: 1000 }), { minLength: drawn.length, maxLength: drawn.length }).map((ids) => ({
          merchantIds,
          lines: drawn.map(({ sortKey: _sortKey, ...line }, index) => ({ ...line, activitySkuId: ids[index]!, skuId: ids[index]! })),
        }));
      }),
  );

function scopeOf(shape: CartShape): fc.Arbitrary<Scope> {
  const merchant = fc.constantFrom(...shape.merchantIds, 99);
  return fc.oneof(
    fc.constant<Scope>({ kind: 'platform' }),
    { arbitrary: merchant.map<Scope>((merchantId) => ({ kind: 'merchant', merchantId })), weight: 2 },
    fc.record({ category: fc.constantFrom(...CATEGORIES), merchantId: fc.option(merchant, { nil: undefined }) }).map<Scope>(({ category, merchantId }) =>
      merchantId === undefined ? { kind: 'category', category } : { kind: 'category', category, merchantId },
    ),
    fc.subarray(shape.lines.map((l) => l.skuId)).map<Scope>((skuIds) => ({ kind: 'sku', skuIds })),
  );
}

const thresholdRule: fc.Arbitrary<Promotion['rule']> = fc.oneof(
  fc.record({ kind: fc.constant('amount_off' as const), threshold_fen: fen(40_000), off_fen: fen(15_000), repeat: fc.boolean(), cap_fen: fc.option(fen(40_000), { nil: undefined }) }),
  fc.record({ kind: fc.constant('percent_off' as const), threshold_fen: fen(40_000), discount_bp: fc.integer({ min: 0, max: 10_000 }) }),
  fc.record({ kind: fc.constant('tiered' as const), tiers: fc.array(fc.record({ threshold_fen: fen(40_000), off_fen: fen(15_000) }), { maxLength: 3 }) }),
);
const nthUnitRule: fc.Arbitrary<Promotion['rule']> = fc.record({ kind: fc.constant('nth_unit' as const), n: fc.integer({ min: 2, max: 4 }), discount_bp: fc.integer({ min: 0, max: 10_000 }) });

/**
 * A random pricing of a random cart. `stackableOnly` keeps to stackable threshold promotions:
 * then which lines each discount may take is known from the answer alone, so a test can
 * redo every split by largest remainder and compare it to the fen.
 */
function pricingInput(stackableOnly: boolean): fc.Arbitrary<PricingInput> {
  return cartShape.chain((shape) => {
    const scope = scopeOf(shape);
    const promotion = fc.record({
      name: fc.constant('promotion'),
      scope,
      rule: stackableOnly ? thresholdRule : fc.oneof(thresholdRule, nthUnitRule),
      priority: fc.integer({ min: 0, max: 3 }),
      stacking: stackableOnly ? fc.constant('stackable' as const) : fc.constantFrom('exclusive' as const, 'stackable' as const),
      starts_at_ms: fc.constantFrom(NOW - 1000, NOW - 1000, NOW + 1000),
      ends_at_ms: fc.constant(NOW + 10_000),
    });
    const coupon = fc.record({
      templateId: fc.constant('template'),
      issuer: fc.oneof(fc.constant({ kind: 'platform' as const }), fc.constantFrom(...shape.merchantIds, 99).map((merchantId) => ({ kind: 'merchant' as const, merchantId }))),
      scope,
      rule: fc.oneof(
        fc.record({ kind: fc.constant('fixed' as const), off_fen: fen(15_000), threshold_fen: fen(20_000) }),
        fc.record({ kind: fc.constant('percent' as const), discount_bp: fc.integer({ min: 0, max: 10_000 }), cap_fen: fen(15_000), threshold_fen: fen(20_000) }),
      ),
      valid_from_ms: fc.constant(NOW - 1000),
      valid_until_ms: fc.constantFrom(NOW + 10_000, NOW + 10_000, NOW),
    });
    const shipping: fc.Arbitrary<ShippingRule['charge']> = fc.oneof(
      fc.record({ kind: fc.constant('flat' as const), fee_fen: fen(2_000) }),
      fc.record({ kind: fc.constant('by_weight' as const), first_g: fc.constant(1000), first_fen: fen(1_000), additional_g: fc.constant(500), additional_fen: fen(300) }),
    );
    return fc
      .record({
        memberLevel: fc.integer({ min: 0, max: 2 }),
        handover: fc.constantFrom('pickup' as const, 'delivery' as const),
        promotions: fc.array(promotion, { maxLength: 6 }),
        coupons: fc.array(coupon, { maxLength: 5 }),
        platformCouponsPerOrder: fc.integer({ min: 1, max: 2 }),
        couponsPerMerchantPerOrder: fc.integer({ min: 1, max: 2 }),
        toUse: fc.integer({ min: 0, max: 50_000 }),
        available: fc.integer({ min: 0, max: 50_000 }),
        pointsPerYuan: fc.constantFrom(1, 10, 100, 1000),
        maxShare_bp: fc.integer({ min: 0, max: 10_000 }),
        charges: fc.array(shipping, { minLength: shape.merchantIds.length, maxLength: shape.merchantIds.length }),
        freeAbove_fen: fc.option(fen(30_000), { nil: undefined }),
      })
      .map((drawn) => ({
        lines: shape.lines,
        buyer: { memberLevel: drawn.memberLevel, region: 'SH', handover: drawn.handover },
        promotions: drawn.promotions.map((p, index) => ({ ...p, id: `promotion-${index}` })),
        coupons: drawn.coupons.map((c, index) => ({ ...c, couponId: `coupon-${index}` })),
        limits: { platformCouponsPerOrder: drawn.platformCouponsPerOrder, couponsPerMerchantPerOrder: drawn.couponsPerMerchantPerOrder },
        points: { toUse: drawn.toUse, available: drawn.available },
        pointsPolicy: { pointsPerYuan: drawn.pointsPerYuan, maxShare_bp: drawn.maxShare_bp },
        shippingRules: shape.merchantIds.map((merchantId, index) => ({
          merchantId,
          handover: drawn.handover,
          charge: drawn.charges[index]!,
          ...(drawn.freeAbove_fen !== undefined && { freeAbove_fen: drawn.freeAbove_fen }),
        })),
        now_ms: NOW,
      }));
  });
}

/** The rule, stated apart from the engine: a merchant's promotions and coupons are its money; the rest is the platform's. */
function expectedFunder(input: PricingInput, discount: Pick<Discount, 'source' | 'id'>): { funder: Funder; merchantId?: number } {
  if (discount.source === 'points') return { funder: 'platform' };
  if (discount.source === 'coupon') {
    const issuer = input.coupons.find((c) => c.couponId === discount.id)!.issuer;
    return issuer.kind === 'merchant' ? { funder: 'merchant', merchantId: issuer.merchantId } : { funder: 'platform' };
  }
  const scope = input.promotions.find((p) => p.id === discount.id)!.scope;
  const merchantId = scope.kind === 'merchant' ? scope.merchantId : scope.kind === 'category' ? scope.merchantId : undefined;
  return merchantId === undefined ? { funder: 'platform' } : { funder: 'merchant', merchantId };
}

const keyOf = (d: Pick<Discount, 'source' | 'id'>) => `${d.source}:${d.id}`;
const shareOf = (line: PricedLine, d: Pick<Discount, 'source' | 'id'>) => line.discounts.find((x) => keyOf(x) === keyOf(d))?.amount_fen ?? 0;
const total = (amounts: readonly number[]) => amounts.reduce((sum, amount) => sum + amount, 0);

/**
 * A plain deep comparison that throws with both sides: the checks below run hundreds of
 * times per cart, and `expect` per check would make the properties too slow to run often.
 */
function same<T>(actual: T, expected: T, what = ''): void {
  if (!isDeepStrictEqual(actual, expected)) throw new Error(`${what} expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
}

function expectFundingAddsUp(input: PricingInput, cart: PricedCart): void {
  const inputLine = new Map(input.lines.map((l) => [l.activitySkuId, l]));
  for (const line of cart.lines) {
    for (const amount of [line.subtotal_fen, line.discount_fen, line.platformFunded_fen, line.merchantFunded_fen, line.shipping_fen, line.payable_fen]) {
      same(Number.isSafeInteger(amount) && amount >= 0, true, `line ${line.activitySkuId}: amount ${amount} is a non-negative integer:`);
    }
    same(line.platformFunded_fen + line.merchantFunded_fen, line.discount_fen);
    same(line.payable_fen, line.subtotal_fen - line.discount_fen + line.shipping_fen);
    same(total(line.discounts.filter((d) => d.funder === 'platform').map((d) => d.amount_fen)), line.platformFunded_fen);
    same(total(line.discounts.filter((d) => d.funder === 'merchant').map((d) => d.amount_fen)), line.merchantFunded_fen);
    for (const discount of line.discounts) {
      same(discount.amount_fen > 0, true, `line ${line.activitySkuId}: ${keyOf(discount)} is positive:`);
      const expected = expectedFunder(input, discount);
      same(discount.funder, expected.funder);
      // A merchant's discount never lands on another merchant's line.
      if (expected.funder === 'merchant') same(line.merchantId, expected.merchantId, `${keyOf(discount)} lands on the line of its merchant:`);
      same(inputLine.get(line.activitySkuId)!.merchantId, line.merchantId);
    }
  }

  // Each applied discount is on the lines exactly, under its one funder; the platform funds
  // exactly the platform discounts applied, and each merchant exactly its own.
  for (const applied of cart.applied) {
    same(applied.funder, expectedFunder(input, applied).funder);
    same(total(cart.lines.map((l) => shareOf(l, applied))), applied.amount_fen);
    for (const line of cart.lines) for (const d of line.discounts) if (keyOf(d) === keyOf(applied)) same(d.funder, applied.funder);
  }
  const appliedKeys = new Set(cart.applied.map(keyOf));
  for (const line of cart.lines) for (const d of line.discounts) same(appliedKeys.has(keyOf(d)), true, `${keyOf(d)} on line ${line.activitySkuId} is applied:`);
  const platformApplied = cart.applied.filter((a) => a.funder === 'platform');
  same(total(cart.lines.map((l) => l.platformFunded_fen)), total(platformApplied.map((a) => a.amount_fen)));
  same(cart.platformFunded_fen, total(platformApplied.map((a) => a.amount_fen)));
  same(cart.merchantFunded_fen, total(cart.applied.filter((a) => a.funder === 'merchant').map((a) => a.amount_fen)));

  // Every merchant's lines make its totals; the merchants make the cart.
  const merchantIds = [...new Set(cart.lines.map((l) => l.merchantId))].sort((a, b) => a - b);
  same(cart.merchants.map((m) => m.merchantId), merchantIds);
  for (const merchant of cart.merchants) {
    const mine = cart.lines.filter((l) => l.merchantId === merchant.merchantId);
    same(merchant, {
      merchantId: merchant.merchantId,
      subtotal_fen: total(mine.map((l) => l.subtotal_fen)),
      discount_fen: total(mine.map((l) => l.discount_fen)),
      platformFunded_fen: total(mine.map((l) => l.platformFunded_fen)),
      merchantFunded_fen: total(mine.map((l) => l.merchantFunded_fen)),
      shipping_fen: total(mine.map((l) => l.shipping_fen)),
      payable_fen: total(mine.map((l) => l.payable_fen)),
    });
    const ownApplied = cart.applied.filter((a) => expectedFunder(input, a).merchantId === merchant.merchantId);
    same(merchant.merchantFunded_fen, total(ownApplied.map((a) => a.amount_fen)));
  }
  same(cart.payable_fen, total(cart.merchants.map((m) => m.payable_fen)));
  same(cart.itemsTotal_fen, total(cart.merchants.map((m) => m.subtotal_fen)));
  same(cart.discountTotal_fen, total(cart.merchants.map((m) => m.discount_fen)));
  same(cart.shipping_fen, total(cart.merchants.map((m) => m.shipping_fen)));
  same(cart.platformFunded_fen, total(cart.merchants.map((m) => m.platformFunded_fen)));
  same(cart.merchantFunded_fen, total(cart.merchants.map((m) => m.merchantFunded_fen)));
  same(cart.platformFunded_fen + cart.merchantFunded_fen, cart.discountTotal_fen);
}

/**
 * Largest remainder, written apart from the engine's: each part gets the floor of its
 * proportional share, and the fen left over go one each to the largest remainders, a tie to
 * the lower activity SKU.
 */
function largestRemainder(amount_fen: number, parts: readonly { activitySkuId: number; weight: number }[]): Map<number, number> {
  const weightSum = BigInt(total(parts.map((p) => p.weight)));
  same(weightSum > 0n, true, 'a split has weight:');
  const exact = parts.map((p) => {
    const product = BigInt(amount_fen) * BigInt(p.weight);
    return { activitySkuId: p.activitySkuId, floor: Number(product / weightSum), remainder: product % weightSum };
  });
  let leftover = amount_fen - total(exact.map((e) => e.floor));
  const shares = new Map(exact.map((e) => [e.activitySkuId, e.floor]));
  const ranked = exact.filter((e) => e.remainder > 0n).sort((a, b) => (a.remainder === b.remainder ? a.activitySkuId - b.activitySkuId : a.remainder > b.remainder ? -1 : 1));
  same(leftover <= ranked.length, true, 'fewer fen left over than remainders:');
  for (const part of ranked) {
    if (leftover === 0) break;
    shares.set(part.activitySkuId, shares.get(part.activitySkuId)! + 1);
    leftover -= 1;
  }
  return shares;
}

/**
 * Redoes every split in the order the engine applied the discounts: each one over the lines
 * it may take (in scope, of the coupon's issuer, still costing something), weighted by what
 * each still costs after the discounts before it.
 */
function expectLargestRemainderSplits(input: PricingInput, cart: PricedCart): void {
  const inputLine = new Map(input.lines.map((l) => [l.activitySkuId, l]));
  const remaining = new Map(cart.lines.map((l) => [l.activitySkuId, l.subtotal_fen]));
  for (const applied of cart.applied) {
    const mayTake = (line: PricedLine): boolean => {
      const source = inputLine.get(line.activitySkuId)!;
      if (applied.source === 'points') return true;
      if (remaining.get(line.activitySkuId)! <= 0) return false;
      if (applied.source === 'promotion') return inScope(input.promotions.find((p) => p.id === applied.id)!.scope, source);
      const coupon: Coupon = input.coupons.find((c) => c.couponId === applied.id)!;
      return (coupon.issuer.kind === 'platform' || coupon.issuer.merchantId === line.merchantId) && inScope(coupon.scope, source);
    };
    const eligible = cart.lines.filter(mayTake);
    const expected = largestRemainder(applied.amount_fen, eligible.map((l) => ({ activitySkuId: l.activitySkuId, weight: remaining.get(l.activitySkuId)! })));
    for (const line of cart.lines) {
      same([applied.id, line.activitySkuId, shareOf(line, applied)], [applied.id, line.activitySkuId, expected.get(line.activitySkuId) ?? 0]);
      remaining.set(line.activitySkuId, remaining.get(line.activitySkuId)! - shareOf(line, applied));
    }
  }
}

describe('who funds a discount, over random carts of one to five merchants', () => {
  it('per line platform + merchant funded = discount; the platform funds exactly its discounts; each merchant its own, on its own lines; merchants sum to the cart', () => {
    fc.assert(
      fc.property(pricingInput(false), (input) => {
        expectFundingAddsUp(input, priceCart(input));
      }),
      { numRuns: 1000 },
    );
  });

  it('every platform and merchant promotion, coupon and points is split over its lines by largest remainder, ties to the lower activity SKU', () => {
    let spanning = 0;
    fc.assert(
      fc.property(pricingInput(true), (input) => {
        const cart = priceCart(input);
        expectFundingAddsUp(input, cart);
        expectLargestRemainderSplits(input, cart);
        const spansMerchants = cart.applied.some((a) => a.funder === 'platform' && new Set(cart.lines.filter((l) => shareOf(l, a) > 0).map((l) => l.merchantId)).size > 1);
        if (spansMerchants) spanning += 1;
      }),
      { numRuns: 1000 },
    );
    // The property is only worth its name if platform discounts often span merchants.
    expect(spanning).toBeGreaterThan(100);
  });

  it('the same cart listed in another order gets the same lines, shares and funders', () => {
    fc.assert(
      fc.property(pricingInput(false), fc.integer({ min: 1, max: 1000 }), (input, seed) => {
        const first = priceCart(input);
        const shuffled = [...input.lines].sort((a, b) => ((a.activitySkuId * seed) % 1009) - ((b.activitySkuId * seed) % 1009));
        const again = priceCart({ ...input, lines: shuffled });
        const byId = (cart: PricedCart) => new Map(cart.lines.map((l) => [l.activitySkuId, l]));
        expect(byId(again)).toEqual(byId(first));
        expect(again.merchants).toEqual(first.merchants);
        expect(again.applied).toEqual(first.applied);
      }),
      { numRuns: 500 },
    );
  });
});
