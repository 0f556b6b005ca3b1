/**
 * Prices of a 50-line cart with 10 active promotions, 5 coupons, points and shipping rules,
 * on one core. Prints prices/s and the time per price; asserts nothing.
 *   npm run bench:pricing
 */
import { priceCart, type Coupon, type PricingInput, type Promotion } from '../src/pricing/index.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const NOW = Date.now();
const window = { starts_at_ms: NOW - 3_600_000, ends_at_ms: NOW + 3_600_000 };

const lines = Array.from({ length: 50 }, (_, i) => ({
  activitySkuId: i + 1,
  skuId: i + 1,
  merchantId: 1 + (i % 5),
  category: i % 3 === 0 ? 'fruit' : 'dairy',
  quantity: 1 + (i % 4),
  listPrice_fen: 1000 + 37 * i,
  activityPrice_fen: 800 + 29 * i,
  weight_g: 250 + 10 * i,
  memberPrices: [{ level: 1, price_fen: 790 + 29 * i }],
  ...(i % 7 === 0 && { activityPriceUnitsLeft: 1 }),
}));

const promotions: Promotion[] = [
  { id: 'p1', name: '满300减50', scope: { kind: 'platform' }, rule: { kind: 'amount_off', threshold_fen: 30_000, off_fen: 5_000, repeat: true, cap_fen: 20_000 }, priority: 9, stacking: 'stackable', ...window },
  { id: 'p2', name: '满500打8折', scope: { kind: 'merchant', merchantId: 1 }, rule: { kind: 'percent_off', threshold_fen: 50_000, discount_bp: 2000 }, priority: 8, stacking: 'stackable', ...window },
  { id: 'p3', name: '阶梯', scope: { kind: 'merchant', merchantId: 2 }, rule: { kind: 'tiered', tiers: [{ threshold_fen: 5_000, off_fen: 300 }, { threshold_fen: 10_000, off_fen: 800 }, { threshold_fen: 20_000, off_fen: 2_000 }] }, priority: 7, stacking: 'stackable', ...window },
  { id: 'p4', name: '第二件半价', scope: { kind: 'category', category: 'fruit' }, rule: { kind: 'nth_unit', n: 2, discount_bp: 5000 }, priority: 10, stacking: 'stackable', ...window },
  { id: 'p5', name: '独享', scope: { kind: 'merchant', merchantId: 3 }, rule: { kind: 'amount_off', threshold_fen: 5_000, off_fen: 1_000 }, priority: 6, stacking: 'exclusive', ...window },
  { id: 'p6', name: '满减4', scope: { kind: 'merchant', merchantId: 4 }, rule: { kind: 'amount_off', threshold_fen: 8_000, off_fen: 900 }, priority: 5, stacking: 'stackable', ...window },
  { id: 'p7', name: '满折5', scope: { kind: 'merchant', merchantId: 5 }, rule: { kind: 'percent_off', threshold_fen: 3_000, discount_bp: 500 }, priority: 4, stacking: 'stackable', ...window },
  { id: 'p8', name: 'SKU', scope: { kind: 'sku', skuIds: [2, 4, 6, 8] }, rule: { kind: 'amount_off', threshold_fen: 1_000, off_fen: 200 }, priority: 3, stacking: 'stackable', ...window },
  { id: 'p9', name: 'dairy', scope: { kind: 'category', category: 'dairy' }, rule: { kind: 'percent_off', threshold_fen: 10_000, discount_bp: 300 }, priority: 2, stacking: 'stackable', ...window },
  { id: 'p10', name: 'late', scope: { kind: 'platform' }, rule: { kind: 'amount_off', threshold_fen: 1, off_fen: 1 }, priority: 1, stacking: 'stackable', starts_at_ms: NOW + 1, ends_at_ms: NOW + 2 },
];

const coupons: Coupon[] = [
  { couponId: 'c1', templateId: 't1', issuer: { kind: 'platform' }, scope: { kind: 'platform' }, rule: { kind: 'fixed', off_fen: 1_000, threshold_fen: 10_000 }, valid_from_ms: NOW - 1, valid_until_ms: NOW + 1e9 },
  { couponId: 'c2', templateId: 't2', issuer: { kind: 'merchant', merchantId: 1 }, scope: { kind: 'merchant', merchantId: 1 }, rule: { kind: 'percent', discount_bp: 1000, cap_fen: 2_000, threshold_fen: 0 }, valid_from_ms: NOW - 1, valid_until_ms: NOW + 1e9 },
  { couponId: 'c3', templateId: 't3', issuer: { kind: 'merchant', merchantId: 2 }, scope: { kind: 'category', category: 'fruit' }, rule: { kind: 'fixed', off_fen: 300, threshold_fen: 1_000 }, valid_from_ms: NOW - 1, valid_until_ms: NOW + 1e9 },
  { couponId: 'c4', templateId: 't4', issuer: { kind: 'platform' }, scope: { kind: 'platform' }, rule: { kind: 'fixed', off_fen: 500, threshold_fen: 0 }, valid_from_ms: NOW - 1, valid_until_ms: NOW + 1e9 },
  { couponId: 'c5', templateId: 't5', issuer: { kind: 'merchant', merchantId: 9 }, scope: { kind: 'merchant', merchantId: 9 }, rule: { kind: 'fixed', off_fen: 500, threshold_fen: 0 }, valid_from_ms: NOW - 1, valid_until_ms: NOW + 1e9 },
];

const input: PricingInput = {
  lines,
  buyer: { memberLevel: 1, region: 'SH', handover: 'delivery' },
  promotions,
  coupons,
  points: { toUse: 5_000, available: 8_000 },
  pointsPolicy: { pointsPerYuan: 100, maxShare_bp: 3000 },
  shippingRules: [1, 2, 3, 4, 5].map((merchantId) => ({
    merchantId,
    handover: 'delivery' as const,
    charge: { kind: 'by_weight' as const, first_g: 1000, first_fen: 800, additional_g: 500, additional_fen: 200 },
    freeAbove_fen: 99_00,
  })),
  now_ms: NOW,
};

const sample = priceCart(input);
console.log(
  `cart: ${lines.length} lines, ${promotions.length} promotions (${sample.applied.filter((a) => a.source === 'promotion').length} applied), ` +
    `${coupons.length} coupons (${sample.applied.filter((a) => a.source === 'coupon').length} applied), points ${sample.points.used}; ` +
    `payable ${sample.payable_fen} fen of ${sample.itemsTotal_fen}`,
);
for (let i = 0; i < 2000; i++) priceCart(input); // warm-up
let count = 0;
const started = performance.now();
const deadline = started + SECONDS * 1000;
while (performance.now() < deadline) {
  for (let i = 0; i < 100; i++) priceCart(input);
  count += 100;
}
const elapsed_s = (performance.now() - started) / 1000;
console.log(`${Math.round(count / elapsed_s)} prices/s on one core (${((elapsed_s * 1e6) / count).toFixed(1)} µs per price), ${SECONDS}s, Node ${process.version}`);
