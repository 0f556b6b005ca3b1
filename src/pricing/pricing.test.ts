import { describe, expect, it } from 'vitest';
import { MAX_SHIPPING_FEE_FEN, PricingError, priceCart, ShippingFeeTooHigh } from './index.ts';
import type { Coupon, PricedLine, PricingInput, PricingLine, Promotion, ShippingRule } from './types.ts';

const NOW = Date.UTC(2026, 10, 24, 12);
const DAY = 86_400_000;

export const line = (id: number, over: Partial<PricingLine> = {}): PricingLine => ({
  activitySkuId: id, skuId: id, merchantId: 1, category: 'fruit', quantity: 1, listPrice_fen: 2000, activityPrice_fen: 1000, weight_g: 500, ...over,
});
export const promo = (id: string, rule: Promotion['rule'], over: Partial<Promotion> = {}): Promotion => ({
  id, name: id, scope: { kind: 'platform' }, rule, priority: 0, stacking: 'stackable', starts_at_ms: NOW - DAY, ends_at_ms: NOW + DAY, ...over,
});
export const coupon = (id: string, rule: Coupon['rule'], over: Partial<Coupon> = {}): Coupon => ({
  couponId: id, templateId: `t-${id}`, issuer: { kind: 'platform' }, scope: { kind: 'platform' }, rule, valid_from_ms: NOW - DAY, valid_until_ms: NOW + DAY, ...over,
});
const price = (over: Partial<PricingInput>) =>
  priceCart({ lines: [line(1)], buyer: { memberLevel: 0, region: 'SH', handover: 'pickup' }, promotions: [], coupons: [], shippingRules: [], now_ms: NOW, ...over });

describe('item prices', () => {
  const cases: { name: string; line: PricingLine; level?: number; segments: [number, number, string][]; subtotal: number }[] = [
    { name: 'activity price × quantity', line: line(1, { quantity: 3 }), segments: [[3, 1000, 'activity']], subtotal: 3000 },
    { name: 'member price when lower and the level is reached', line: line(1, { quantity: 2, memberPrices: [{ level: 1, price_fen: 900 }, { level: 3, price_fen: 800 }] }), level: 2, segments: [[2, 900, 'member']], subtotal: 1800 },
    { name: 'member price of a higher level is not given', line: line(1, { memberPrices: [{ level: 3, price_fen: 800 }] }), level: 2, segments: [[1, 1000, 'activity']], subtotal: 1000 },
    { name: 'member price above the activity price is ignored', line: line(1, { memberPrices: [{ level: 0, price_fen: 1200 }] }), segments: [[1, 1000, 'activity']], subtotal: 1000 },
    { name: 'stock-linked: a quantity crossing the boundary is priced on both sides', line: line(1, { quantity: 5, activityPriceUnitsLeft: 2 }), segments: [[2, 1000, 'activity'], [3, 2000, 'list']], subtotal: 8000 },
    { name: 'stock-linked: allowance used up means list price', line: line(1, { quantity: 2, activityPriceUnitsLeft: 0 }), segments: [[2, 2000, 'list']], subtotal: 4000 },
    { name: 'stock-linked with a member price beyond the boundary', line: line(1, { quantity: 3, activityPriceUnitsLeft: 1, memberPrices: [{ level: 0, price_fen: 1500 }] }), segments: [[1, 1000, 'activity'], [2, 1500, 'member']], subtotal: 4000 },
  ];
  for (const testCase of cases) {
    it(testCase.name, () => {
      const cart = price({ lines: [testCase.line], buyer: { memberLevel: testCase.level ?? 0, region: 'SH', handover: 'pickup' } });
      expect(cart.lines[0]!.segments.map((s) => [s.quantity, s.unitPrice_fen, s.basis])).toEqual(testCase.segments);
      expect(cart.itemsTotal_fen).toBe(testCase.subtotal);
      expect(cart.payable_fen).toBe(testCase.subtotal);
    });
  }
});

describe('promotions', () => {
  const cases: { name: string; lines: PricingLine[]; promotions: Promotion[]; discount: number; applied: string[]; notApplied?: [string, string][] }[] = [
    { name: '满减 reached', lines: [line(1, { quantity: 3 })], promotions: [promo('p', { kind: 'amount_off', threshold_fen: 3000, off_fen: 500 })], discount: 500, applied: ['p'] },
    { name: '满减 not reached', lines: [line(1, { quantity: 2 })], promotions: [promo('p', { kind: 'amount_off', threshold_fen: 3000, off_fen: 500 })], discount: 0, applied: [], notApplied: [['p', 'threshold_not_reached']] },
    { name: '满减 repeating per threshold', lines: [line(1, { quantity: 7 })], promotions: [promo('p', { kind: 'amount_off', threshold_fen: 3000, off_fen: 500, repeat: true })], discount: 1000, applied: ['p'] },
    { name: '满减 repeating up to its cap', lines: [line(1, { quantity: 20 })], promotions: [promo('p', { kind: 'amount_off', threshold_fen: 3000, off_fen: 500, repeat: true, cap_fen: 1500 })], discount: 1500, applied: ['p'] },
    { name: '满折 20 % off', lines: [line(1, { quantity: 5 })], promotions: [promo('p', { kind: 'percent_off', threshold_fen: 5000, discount_bp: 2000 })], discount: 1000, applied: ['p'] },
    { name: '满折 not reached', lines: [line(1, { quantity: 4 })], promotions: [promo('p', { kind: 'percent_off', threshold_fen: 5000, discount_bp: 2000 })], discount: 0, applied: [], notApplied: [['p', 'threshold_not_reached']] },
    { name: '阶梯: the highest tier reached', lines: [line(1, { quantity: 6 })], promotions: [promo('p', { kind: 'tiered', tiers: [{ threshold_fen: 2000, off_fen: 100 }, { threshold_fen: 5000, off_fen: 600 }, { threshold_fen: 9000, off_fen: 1500 }] })], discount: 600, applied: ['p'] },
    { name: '第二件半价 on each pair', lines: [line(1, { quantity: 5 })], promotions: [promo('p', { kind: 'nth_unit', n: 2, discount_bp: 5000 })], discount: 1000, applied: ['p'] },
    { name: '第二件半价 with one unit', lines: [line(1)], promotions: [promo('p', { kind: 'nth_unit', n: 2, discount_bp: 5000 })], discount: 0, applied: [], notApplied: [['p', 'threshold_not_reached']] },
    { name: 'not started', lines: [line(1, { quantity: 9 })], promotions: [promo('p', { kind: 'amount_off', threshold_fen: 1, off_fen: 1 }, { starts_at_ms: NOW + 1 })], discount: 0, applied: [], notApplied: [['p', 'not_started']] },
    { name: 'expired', lines: [line(1, { quantity: 9 })], promotions: [promo('p', { kind: 'amount_off', threshold_fen: 1, off_fen: 1 }, { ends_at_ms: NOW })], discount: 0, applied: [], notApplied: [['p', 'expired']] },
    { name: 'another merchant’s promotion', lines: [line(1, { quantity: 9 })], promotions: [promo('p', { kind: 'amount_off', threshold_fen: 1, off_fen: 1 }, { scope: { kind: 'merchant', merchantId: 2 } })], discount: 0, applied: [], notApplied: [['p', 'no_eligible_lines']] },
    { name: 'a merchant promotion counts only that merchant’s lines toward its threshold', lines: [line(1, { quantity: 2 }), line(2, { quantity: 2, merchantId: 2 })], promotions: [promo('p', { kind: 'amount_off', threshold_fen: 3000, off_fen: 500 }, { scope: { kind: 'merchant', merchantId: 1 } })], discount: 0, applied: [], notApplied: [['p', 'threshold_not_reached']] },
    { name: 'category scope', lines: [line(1, { quantity: 3 }), line(2, { quantity: 3, category: 'eggs' })], promotions: [promo('p', { kind: 'percent_off', threshold_fen: 0, discount_bp: 1000 }, { scope: { kind: 'category', category: 'eggs' } })], discount: 300, applied: ['p'] },
    { name: 'two stackable promotions both apply, the second on what is left', lines: [line(1, { quantity: 10 })], promotions: [promo('a', { kind: 'amount_off', threshold_fen: 10_000, off_fen: 1000 }, { priority: 2 }), promo('b', { kind: 'percent_off', threshold_fen: 0, discount_bp: 1000 }, { priority: 1 })], discount: 1900, applied: ['a', 'b'] },
    { name: 'an exclusive promotion of higher priority keeps its lines to itself', lines: [line(1, { quantity: 10 })], promotions: [promo('x', { kind: 'amount_off', threshold_fen: 1000, off_fen: 300 }, { priority: 5, stacking: 'exclusive' }), promo('s', { kind: 'percent_off', threshold_fen: 0, discount_bp: 1000 })], discount: 300, applied: ['x'], notApplied: [['s', 'not_stackable']] },
    { name: 'an exclusive promotion does not join lines another promotion took', lines: [line(1, { quantity: 10 })], promotions: [promo('s', { kind: 'percent_off', threshold_fen: 0, discount_bp: 1000 }, { priority: 5 }), promo('x', { kind: 'amount_off', threshold_fen: 1000, off_fen: 300 }, { stacking: 'exclusive' })], discount: 1000, applied: ['s'], notApplied: [['x', 'not_stackable']] },
    { name: 'a discount never exceeds the amount', lines: [line(1)], promotions: [promo('p', { kind: 'amount_off', threshold_fen: 500, off_fen: 99_999 })], discount: 1000, applied: ['p'] },
  ];
  for (const testCase of cases) {
    it(testCase.name, () => {
      const cart = price({ lines: testCase.lines, promotions: testCase.promotions });
      expect(cart.discountTotal_fen).toBe(testCase.discount);
      expect(cart.applied.map((a) => a.id)).toEqual(testCase.applied);
      expect(cart.notApplied.map((n) => [n.id, n.reason])).toEqual(testCase.notApplied ?? []);
    });
  }
});

describe('coupons', () => {
  const fixed = (off: number, threshold = 0) => ({ kind: 'fixed' as const, off_fen: off, threshold_fen: threshold });
  const cases: { name: string; lines?: PricingLine[]; promotions?: Promotion[]; coupons: Coupon[]; discount: number; applied: string[]; notApplied?: [string, string][] }[] = [
    { name: 'fixed amount with its threshold reached', coupons: [coupon('c', fixed(300, 1000))], discount: 300, applied: ['c'] },
    { name: 'threshold not reached', coupons: [coupon('c', fixed(300, 1001))], discount: 0, applied: [], notApplied: [['c', 'threshold_not_reached']] },
    { name: 'no threshold', coupons: [coupon('c', fixed(200))], discount: 200, applied: ['c'] },
    { name: 'percentage with a cap', lines: [line(1, { quantity: 10 })], coupons: [coupon('c', { kind: 'percent', discount_bp: 2000, cap_fen: 1500, threshold_fen: 0 })], discount: 1500, applied: ['c'] },
    { name: 'percentage under its cap', lines: [line(1, { quantity: 5 })], coupons: [coupon('c', { kind: 'percent', discount_bp: 2000, cap_fen: 1500, threshold_fen: 0 })], discount: 1000, applied: ['c'] },
    { name: 'expired', coupons: [coupon('c', fixed(100), { valid_until_ms: NOW })], discount: 0, applied: [], notApplied: [['c', 'expired']] },
    { name: 'not yet valid', coupons: [coupon('c', fixed(100), { valid_from_ms: NOW + 1 })], discount: 0, applied: [], notApplied: [['c', 'not_started']] },
    { name: 'another merchant’s coupon', coupons: [coupon('c', fixed(100), { issuer: { kind: 'merchant', merchantId: 9 }, scope: { kind: 'merchant', merchantId: 9 } })], discount: 0, applied: [], notApplied: [['c', 'wrong_merchant']] },
    { name: 'SKU scope that matches nothing', coupons: [coupon('c', fixed(100), { scope: { kind: 'sku', skuIds: [77] } })], discount: 0, applied: [], notApplied: [['c', 'no_eligible_lines']] },
    { name: 'one platform coupon per order', coupons: [coupon('a', fixed(100)), coupon('b', fixed(200))], discount: 100, applied: ['a'], notApplied: [['b', 'limit_used']] },
    { name: 'one platform and one merchant coupon together', coupons: [coupon('p', fixed(100)), coupon('m', fixed(200), { issuer: { kind: 'merchant', merchantId: 1 }, scope: { kind: 'merchant', merchantId: 1 } })], discount: 300, applied: ['m', 'p'] },
    { name: 'the same coupon twice', coupons: [coupon('a', fixed(100)), coupon('a', fixed(100))], discount: 100, applied: ['a'], notApplied: [['a', 'duplicate']] },
    { name: 'the coupon threshold counts what is left after promotions', lines: [line(1, { quantity: 3 })], promotions: [promo('p', { kind: 'amount_off', threshold_fen: 3000, off_fen: 500 })], coupons: [coupon('c', fixed(300, 3000))], discount: 500, applied: ['p'], notApplied: [['c', 'threshold_not_reached']] },
  ];
  for (const testCase of cases) {
    it(testCase.name, () => {
      const cart = price({ lines: testCase.lines ?? [line(1)], promotions: testCase.promotions ?? [], coupons: testCase.coupons });
      expect(cart.discountTotal_fen).toBe(testCase.discount);
      expect(cart.applied.map((a) => a.id)).toEqual(testCase.applied);
      expect(cart.notApplied.map((n) => [n.id, n.reason])).toEqual(testCase.notApplied ?? []);
    });
  }
});

describe('points', () => {
  const policy = { pointsPerYuan: 100, maxShare_bp: 5000 };
  const cases: { name: string; toUse: number; available: number; ppy?: number; used: number; fen: number }[] = [
    { name: '100 points = 1 yuan', toUse: 300, available: 1000, used: 300, fen: 300 },
    { name: 'capped at half the payable', toUse: 5000, available: 5000, used: 500, fen: 500 },
    { name: 'never beyond the balance', toUse: 300, available: 120, used: 120, fen: 120 },
    { name: 'only whole fen: 1000 points per yuan', toUse: 155, available: 155, ppy: 1000, used: 150, fen: 15 },
    { name: 'nothing asked, nothing used', toUse: 0, available: 500, used: 0, fen: 0 },
  ];
  for (const testCase of cases) {
    it(testCase.name, () => {
      const cart = price({ points: { toUse: testCase.toUse, available: testCase.available }, pointsPolicy: { ...policy, pointsPerYuan: testCase.ppy ?? policy.pointsPerYuan } });
      expect(cart.points).toEqual({ used: testCase.used, discount_fen: testCase.fen });
      expect(cart.payable_fen).toBe(1000 - testCase.fen);
    });
  }
});

describe('shipping', () => {
  const delivery = { memberLevel: 0, region: 'SH', handover: 'delivery' as const };
  const byWeight: ShippingRule = { merchantId: 1, handover: 'delivery', charge: { kind: 'by_weight', first_g: 1000, first_fen: 800, additional_g: 500, additional_fen: 200 }, freeAbove_fen: 9900 };
  const cases: { name: string; lines: PricingLine[]; rules: ShippingRule[]; buyer?: typeof delivery; shipping: number }[] = [
    { name: 'self-pickup with no rule costs nothing', lines: [line(1)], rules: [], buyer: { ...delivery, handover: 'pickup' } as any, shipping: 0 },
    { name: 'self-pickup goes through its rule', lines: [line(1)], rules: [{ merchantId: 1, handover: 'pickup', charge: { kind: 'flat', fee_fen: 0 } }], buyer: { ...delivery, handover: 'pickup' } as any, shipping: 0 },
    { name: 'by weight: first kilo and each further half kilo', lines: [line(1, { quantity: 4 })], rules: [byWeight], shipping: 800 + 2 * 200 },
    { name: 'by weight: free above the threshold', lines: [line(1, { quantity: 10 })], rules: [byWeight], shipping: 0 },
    { name: 'by pieces', lines: [line(1, { quantity: 5 })], rules: [{ merchantId: 1, handover: 'delivery', charge: { kind: 'by_pieces', first_pieces: 2, first_fen: 500, additional_pieces: 1, additional_fen: 100 } }], shipping: 800 },
    { name: 'a rule for the region wins over the default', lines: [line(1)], rules: [byWeight, { merchantId: 1, handover: 'delivery', regions: ['SH'], charge: { kind: 'flat', fee_fen: 300 } }], shipping: 300 },
    { name: 'each merchant ships on its own', lines: [line(1), line(2, { merchantId: 2 })], rules: [byWeight, { ...byWeight, merchantId: 2 }], shipping: 1600 },
  ];
  for (const testCase of cases) {
    it(testCase.name, () => {
      const cart = price({ lines: testCase.lines, shippingRules: testCase.rules, buyer: testCase.buyer ?? delivery });
      expect(cart.shipping_fen).toBe(testCase.shipping);
      expect(cart.payable_fen).toBe(cart.itemsTotal_fen - cart.discountTotal_fen + testCase.shipping);
    });
  }
  it('refuses a delivery the merchant does not make', () => {
    expect(() => price({ lines: [line(1)], shippingRules: [], buyer: delivery })).toThrow(PricingError);
  });
  it('charges shipping up to MAX_SHIPPING_FEE_FEN and refuses a rule that charges more, naming its merchant', () => {
    const perPiece = (additional_fen: number): ShippingRule => ({ merchantId: 1, handover: 'delivery', charge: { kind: 'by_pieces', first_pieces: 0, first_fen: 0, additional_pieces: 1, additional_fen } });
    expect(price({ lines: [line(1, { quantity: 2 })], shippingRules: [perPiece(MAX_SHIPPING_FEE_FEN / 2)], buyer: delivery }).shipping_fen).toBe(MAX_SHIPPING_FEE_FEN);
    const past = () => price({ lines: [line(1, { quantity: 2 })], shippingRules: [perPiece(MAX_SHIPPING_FEE_FEN / 2 + 1)], buyer: delivery });
    expect(past).toThrow(ShippingFeeTooHigh);
    expect(past).toThrow(/merchant 1/);
    // Far past 2^53 fen is the same refusal, not a broken sum.
    const heavy = line(1, { quantity: 99, weight_g: 1_000_000 });
    const huge: ShippingRule = { merchantId: 1, handover: 'delivery', charge: { kind: 'by_weight', first_g: 0, first_fen: 0, additional_g: 1, additional_fen: 1_000_000_000 } };
    expect(() => price({ lines: [heavy], shippingRules: [huge], buyer: delivery })).toThrow(ShippingFeeTooHigh);
  });
});

describe('allocation', () => {
  it('spreads an order discount over lines by largest remainder; lines sum to the order', () => {
    const cart = price({
      lines: [line(1, { activityPrice_fen: 333 }), line(2, { activityPrice_fen: 333 }), line(3, { activityPrice_fen: 334 })],
      coupons: [coupon('c', { kind: 'fixed', off_fen: 100, threshold_fen: 0 })],
    });
    expect(cart.lines.map((l) => l.discount_fen)).toEqual([33, 33, 34]);
    expect(cart.lines.map((l) => l.payable_fen)).toEqual([300, 300, 300]);
    expect(cart.merchants).toEqual([{ merchantId: 1, subtotal_fen: 1000, discount_fen: 100, platformFunded_fen: 100, merchantFunded_fen: 0, shipping_fen: 0, payable_fen: 900 }]);
    expect(cart.lines[0]!.discounts).toEqual([{ source: 'coupon', id: 'c', funder: 'platform', amount_fen: 33 }]);
  });
});

describe('who funds a discount', () => {
  // Two merchants: lines 1 and 2 are merchant 1's (1000 and 3000 fen), line 3 is merchant 2's (4000 fen).
  const lines = [line(1), line(2, { quantity: 3 }), line(3, { merchantId: 2, quantity: 4, category: 'eggs' })];
  const fixed = (off_fen: number): Coupon['rule'] => ({ kind: 'fixed', off_fen, threshold_fen: 0 });
  const off = (off_fen: number): Promotion['rule'] => ({ kind: 'amount_off', threshold_fen: 1, off_fen });
  const cases: { name: string; promotions?: Promotion[]; coupons?: Coupon[]; points?: number; funder: 'platform' | 'merchant'; perLine: [number, number, number] }[] = [
    { name: 'a platform promotion spans both merchants, split by what each line costs (平台补贴)', promotions: [promo('p', off(800))], funder: 'platform', perLine: [100, 300, 400] },
    { name: "a merchant's promotion is its own money, on its own lines only (商家让利)", promotions: [promo('m', off(400), { scope: { kind: 'merchant', merchantId: 1 } })], funder: 'merchant', perLine: [100, 300, 0] },
    { name: "a category promotion of one merchant is that merchant's", promotions: [promo('m', off(400), { scope: { kind: 'category', category: 'eggs', merchantId: 2 } })], funder: 'merchant', perLine: [0, 0, 400] },
    { name: 'a category promotion of every merchant is the platform’s', promotions: [promo('p', off(400), { scope: { kind: 'category', category: 'fruit' } })], funder: 'platform', perLine: [100, 300, 0] },
    { name: 'a SKU promotion is the platform’s', promotions: [promo('p', off(400), { scope: { kind: 'sku', skuIds: [2, 3] } })], funder: 'platform', perLine: [0, 171, 229] },
    { name: "a merchant's coupon is that merchant's", coupons: [coupon('m', fixed(200), { issuer: { kind: 'merchant', merchantId: 2 } })], funder: 'merchant', perLine: [0, 0, 200] },
    { name: "a platform coupon scoped to one merchant is still the platform's", coupons: [coupon('c', fixed(200), { scope: { kind: 'merchant', merchantId: 1 } })], funder: 'platform', perLine: [50, 150, 0] },
    { name: 'points are the platform’s', points: 800, funder: 'platform', perLine: [100, 300, 400] },
  ];
  for (const testCase of cases) {
    it(testCase.name, () => {
      const cart = price({
        lines,
        promotions: testCase.promotions ?? [],
        coupons: testCase.coupons ?? [],
        ...(testCase.points && { points: { toUse: testCase.points, available: testCase.points }, pointsPolicy: { pointsPerYuan: 100, maxShare_bp: 10_000 } }),
      });
      const funded = (l: PricedLine) => (testCase.funder === 'platform' ? l.platformFunded_fen : l.merchantFunded_fen);
      const other = (l: PricedLine) => (testCase.funder === 'platform' ? l.merchantFunded_fen : l.platformFunded_fen);
      expect(cart.lines.map(funded)).toEqual(testCase.perLine);
      expect(cart.lines.map(other)).toEqual([0, 0, 0]);
      expect(cart.lines.flatMap((l) => l.discounts).every((d) => d.funder === testCase.funder)).toBe(true);
      expect(cart.applied.map((a) => a.funder)).toEqual([testCase.funder]);
      expect(cart.merchants.map((m) => [m.merchantId, m.platformFunded_fen + m.merchantFunded_fen])).toEqual([[1, testCase.perLine[0] + testCase.perLine[1]], [2, testCase.perLine[2]]]);
    });
  }

  it('a platform and a merchant discount on one line are told apart, and add up to its discount', () => {
    const cart = price({
      lines,
      promotions: [promo('m', off(400), { scope: { kind: 'merchant', merchantId: 1 } })],
      coupons: [coupon('c', fixed(760))],
    });
    // The coupon is split over what the lines still cost after merchant 1's promotion: 900, 2700, 4000.
    expect(cart.lines.map((l) => [l.merchantFunded_fen, l.platformFunded_fen, l.discount_fen])).toEqual([[100, 90, 190], [300, 270, 570], [0, 400, 400]]);
    expect(cart.merchants.map((m) => [m.merchantFunded_fen, m.platformFunded_fen])).toEqual([[400, 360], [0, 400]]);
    expect([cart.merchantFunded_fen, cart.platformFunded_fen, cart.discountTotal_fen]).toEqual([400, 760, 1160]);
  });

  it('a tie of remainders goes to the lower activity SKU, whatever order the cart lists the lines in', () => {
    const even = [line(7, { merchantId: 2 }), line(4), line(9, { merchantId: 3 })];
    for (const order of [even, [...even].reverse(), [even[1]!, even[2]!, even[0]!]]) {
      const cart = price({ lines: order, coupons: [coupon('c', fixed(100))] });
      const share = new Map(cart.lines.map((l) => [l.activitySkuId, l.platformFunded_fen]));
      expect([share.get(4), share.get(7), share.get(9)]).toEqual([34, 33, 33]);
    }
  });
});
