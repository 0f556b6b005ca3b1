import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { allocateFen, assertFen, multiplyFen } from './money.ts';

describe('allocateFen (largest remainder)', () => {
  const cases: { total: number; weights: number[]; parts: number[] }[] = [
    { total: 100, weights: [1, 1, 1], parts: [34, 33, 33] },
    { total: 1, weights: [1, 1], parts: [1, 0] },
    { total: 0, weights: [5, 7], parts: [0, 0] },
    { total: 1000, weights: [3000, 1000], parts: [750, 250] },
    { total: 7, weights: [0, 0, 0], parts: [3, 2, 2] },
    { total: 10, weights: [0, 5], parts: [0, 10] },
    { total: 5, weights: [1, 2, 3, 4], parts: [1, 1, 1, 2] }, // remainders tie at .5: the earlier part wins
  ];
  for (const testCase of cases) {
    it(`${testCase.total} over ${testCase.weights.join(':')} → ${testCase.parts.join(', ')}`, () => {
      expect(allocateFen(testCase.total, testCase.weights)).toEqual(testCase.parts);
    });
  }

  it('always sums to the whole, never negative, deterministic', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 10_000_000_000 }), fc.array(fc.integer({ min: 0, max: 1_000_000_000 }), { minLength: 1, maxLength: 60 }), (total, weights) => {
        const parts = allocateFen(total, weights);
        expect(parts.reduce((a, b) => a + b, 0)).toBe(total);
        for (const p of parts) expect(p).toBeGreaterThanOrEqual(0);
        expect(allocateFen(total, weights)).toEqual(parts);
      }),
    );
  });

  it('refuses what cannot be money', () => {
    expect(() => allocateFen(-1, [1])).toThrow(/invariant/);
    expect(() => allocateFen(1.5, [1])).toThrow(/invariant/);
    expect(() => allocateFen(10, [])).toThrow(/invariant/);
    expect(() => allocateFen(10, [-1, 2])).toThrow(/invariant/);
    expect(() => assertFen(Number.MAX_SAFE_INTEGER + 1, 'x')).toThrow(/invariant/);
    expect(() => multiplyFen(Number.MAX_SAFE_INTEGER, 2)).toThrow(/invariant/);
  });
});
