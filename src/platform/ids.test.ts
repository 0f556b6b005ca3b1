import { describe, expect, it } from 'vitest';
import { orderNumberGenerator } from './ids.ts';
import { orderShards, SLOT_COUNT, slotOfBuyer, slotOfOrderNo } from './shards.ts';

describe('order numbers', () => {
  it('are 23 digits, unique, time-ordered, and end in the buyer’s slot', () => {
    const next = orderNumberGenerator(42);
    const t = Date.UTC(2026, 10, 24, 12);
    const numbers: string[] = [];
    for (let i = 0; i < 5_000; i++) numbers.push(next(slotOfBuyer(1 + (i % 3000)), t + Math.floor(i / 2000)));
    expect(new Set(numbers).size).toBe(numbers.length);
    for (const n of numbers) expect(n).toMatch(/^\d{23}$/);
    const sorted = [...numbers].sort();
    expect(sorted).toEqual(numbers);
    expect(slotOfOrderNo(numbers[0]!)).toBe(1);
    expect(slotOfOrderNo(numbers[2999]!)).toBe(3000 % SLOT_COUNT);
  });

  it('keep increasing when the clock steps back', () => {
    const next = orderNumberGenerator(7);
    const a = next(5, Date.UTC(2026, 0, 1, 0, 0, 1));
    const b = next(5, Date.UTC(2026, 0, 1, 0, 0, 0));
    expect(b > a).toBe(true);
  });

  it('refuse a bad node id or slot', () => {
    expect(() => orderNumberGenerator(10_000)).toThrow();
    expect(() => orderNumberGenerator(1)(SLOT_COUNT, Date.now())).toThrow();
  });
});

describe('shard routing', () => {
  it('routes by buyer and by order number alone to the same database', () => {
    const dbs = ['a', 'b', 'c'] as any[];
    const shards = orderShards(dbs);
    const next = orderNumberGenerator(1);
    for (const buyerId of [1, 2, 341, 342, 700, 1023, 1024, 99_999]) {
      const orderNo = next(slotOfBuyer(buyerId), Date.now());
      expect(shards.forOrderNo(orderNo)).toBe(shards.forBuyer(buyerId));
    }
    expect(shards.forSlot(0)).toBe('a');
    expect(shards.forSlot(SLOT_COUNT - 1)).toBe('c');
  });

  it('knows a malformed order number is none of ours', () => {
    for (const bad of ['', '123', 'x'.repeat(23), '0'.repeat(19) + '9999']) expect(slotOfOrderNo(bad)).toBeUndefined();
  });
});
