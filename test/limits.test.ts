import { describe, expect, it } from 'vitest';
import { EventBus, MAX_CONSUMERS } from '../src/events/relay.ts';
import type { TestDb as Db } from './support/db.ts';
import { MAX_TRANSACTION_ATTEMPTS, withTransientRetry } from '../src/platform/db/retry.ts';
import { MAX_TOKEN_TTL_S, signToken, verifyToken } from '../src/platform/http/tokens.ts';
import { MAX_DRAIN_PASSES, pollingLoop } from '../src/platform/polling-loop.ts';
import { MAX_COUPONS, MAX_PRICED_LINES, MAX_PROMOTIONS, priceCart } from '../src/pricing/index.ts';
import type { Coupon, PricingInput, PricingLine, Promotion } from '../src/pricing/types.ts';
import { TEST_TOKEN_SECRET } from './support/harness.ts';

/** Named limits of plain code, at the limit and one past it, by name. */
describe('limits of plain code', () => {
  it('the bus takes MAX_CONSUMERS consumers and refuses one more', () => {
    const bus = new EventBus({} as Db);
    for (let i = 0; i < MAX_CONSUMERS; i++) bus.subscribe('test.event', `test.consumer.${i}`, async () => undefined);
    expect(bus.consumers()).toHaveLength(MAX_CONSUMERS);
    expect(() => bus.subscribe('test.event', 'test.consumer.one-more', async () => undefined)).toThrow(/more than/);
    expect(bus.consumers()).toHaveLength(MAX_CONSUMERS);
  });

  it('a transaction colliding MAX_TRANSACTION_ATTEMPTS - 1 times still commits; colliding MAX_TRANSACTION_ATTEMPTS times fails', async () => {
    const collidingTimes = (times: number) => {
      let calls = 0;
      const work = async () => {
        calls += 1;
        if (calls <= times) throw Object.assign(new Error('could not serialize access'), { code: '40001' });
        return 'committed';
      };
      return { work, calls: () => calls };
    };
    const lastChance = collidingTimes(MAX_TRANSACTION_ATTEMPTS - 1);
    expect(await withTransientRetry(lastChance.work)).toBe('committed');
    expect(lastChance.calls()).toBe(MAX_TRANSACTION_ATTEMPTS);
    const exhausted = collidingTimes(MAX_TRANSACTION_ATTEMPTS);
    await expect(withTransientRetry(exhausted.work)).rejects.toMatchObject({ code: '40001' });
    expect(exhausted.calls()).toBe(MAX_TRANSACTION_ATTEMPTS);
  });

  it('a token lives at most MAX_TOKEN_TTL_S seconds: one that long is signed and valid to its end, one second more is refused', () => {
    const now = Math.floor(Date.now() / 1000) * 1000; // tokens count in whole seconds
    const token = signToken(TEST_TOKEN_SECRET, { role: 'buyer', subject: '1' }, now, MAX_TOKEN_TTL_S);
    expect(verifyToken(TEST_TOKEN_SECRET, token, now + MAX_TOKEN_TTL_S * 1000 - 1)).toMatchObject({ role: 'buyer', subject: '1', expires_at_ms: now + MAX_TOKEN_TTL_S * 1000 });
    expect(() => signToken(TEST_TOKEN_SECRET, { role: 'buyer', subject: '1' }, now, MAX_TOKEN_TTL_S + 1)).toThrow();
  });

  it('a drain runs up to MAX_DRAIN_PASSES passes: quiet on the last one is quiet, still busy after it is an error', async () => {
    const busyFor = (passes: number) => {
      let calls = 0;
      const pass = async () => {
        calls += 1;
        return calls <= passes ? 1 : 0;
      };
      // The background timer is an hour away: only the drain runs passes.
      const loop = pollingLoop(pass, { idle_ms: 3_600_000, batch_ms: 3_600_000 }, () => undefined);
      return { loop, calls: () => calls };
    };
    const lastPassQuiet = busyFor(MAX_DRAIN_PASSES - 1);
    expect(await lastPassQuiet.loop.drain()).toBe(MAX_DRAIN_PASSES - 1);
    expect(lastPassQuiet.calls()).toBe(MAX_DRAIN_PASSES);
    await lastPassQuiet.loop.stop();
    const neverQuiet = busyFor(MAX_DRAIN_PASSES);
    await expect(neverQuiet.loop.drain()).rejects.toThrow();
    expect(neverQuiet.calls()).toBe(MAX_DRAIN_PASSES);
    await neverQuiet.loop.stop();
  });

  describe('the pricing engine prices at most MAX_PRICED_LINES lines, MAX_PROMOTIONS promotions and MAX_COUPONS coupons', () => {
    const NOW = Date.UTC(2026, 10, 24, 12);
    const line = (id: number): PricingLine => ({ activitySkuId: id, skuId: id, merchantId: 1, category: 'fruit', quantity: 1, listPrice_fen: 2000, activityPrice_fen: 1000, weight_g: 500 });
    const promotion = (id: number): Promotion => ({ id: `p${id}`, name: `p${id}`, scope: { kind: 'platform' }, rule: { kind: 'amount_off', threshold_fen: 1_000_000_000, off_fen: 1 }, priority: 0, stacking: 'stackable', starts_at_ms: NOW - 1, ends_at_ms: NOW + 1 });
    const coupon = (id: number): Coupon => ({ couponId: `c${id}`, templateId: `t${id}`, issuer: { kind: 'platform' }, scope: { kind: 'platform' }, rule: { kind: 'fixed', off_fen: 1, threshold_fen: 1 }, valid_from_ms: NOW - 1, valid_until_ms: NOW + 1 });
    const input = (lines: number, promotions: number, coupons: number): PricingInput => ({
      lines: Array.from({ length: lines }, (_, i) => line(i + 1)),
      buyer: { memberLevel: 0, region: 'SH', handover: 'pickup' },
      promotions: Array.from({ length: promotions }, (_, i) => promotion(i + 1)),
      coupons: Array.from({ length: coupons }, (_, i) => coupon(i + 1)),
      shippingRules: [],
      now_ms: NOW,
    });
    it('at the limits a cart is priced', () => {
      expect(priceCart(input(MAX_PRICED_LINES, 0, 0)).lines).toHaveLength(MAX_PRICED_LINES);
      expect(priceCart(input(1, MAX_PROMOTIONS, 0)).payable_fen).toBe(1000);
    });
    it('at MAX_COUPONS coupons the cart is priced (one platform coupon applies); one more is a broken invariant', () => {
      expect(priceCart(input(1, 0, MAX_COUPONS)).payable_fen).toBe(999);
      expect(() => priceCart(input(1, 0, MAX_COUPONS + 1))).toThrow(/at most/);
    });
    it('one past a limit is a broken invariant', () => {
      expect(() => priceCart(input(MAX_PRICED_LINES + 1, 0, 0))).toThrow(/1\.\./);
      expect(() => priceCart(input(1, MAX_PROMOTIONS + 1, 0))).toThrow(/at most/);
    });
  });
});
