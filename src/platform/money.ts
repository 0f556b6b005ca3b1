import { assert } from './errors.ts';

/** Amounts are integer fen (分) with their currency beside them; never floats. */
export const CURRENCY = 'CNY';
export type Currency = typeof CURRENCY;

export function assertFen(amount_fen: number, what: string): number {
  assert(Number.isSafeInteger(amount_fen), `${what} must be a safe integer of fen, got ${amount_fen}`);
  return amount_fen;
}

export function multiplyFen(unit_fen: number, quantity: number): number {
  return assertFen(unit_fen * quantity, 'unit price × quantity');
}

export function sumFen(amounts_fen: readonly number[]): number {
  let total = 0;
  for (const amount of amounts_fen) total = assertFen(total + amount, 'sum');
  return total;
}

/**
 * Splits `total_fen` across parts in proportion to `weights` by largest remainder, so the
 * parts always add up to the whole exactly. Ties go to the earlier part, so the result is
 * deterministic. With all-zero weights the total goes to the parts evenly.
 */
export function allocateFen(total_fen: number, weights: readonly number[]): number[] {
  assertFen(total_fen, 'total to allocate');
  assert(total_fen >= 0, 'cannot allocate a negative total');
  assert(weights.length > 0, 'allocation needs at least one part');
  for (const w of weights) assert(Number.isSafeInteger(w) && w >= 0, `allocation weight must be a non-negative integer, got ${w}`);
  const weightSum = weights.reduce((a, b) => a + b, 0);
  const effective = weightSum === 0 ? weights.map(() => 1) : weights;
  const effectiveSum = weightSum === 0 ? weights.length : weightSum;

  // BigInt keeps total × weight exact beyond 2^53.
  const parts: number[] = [];
  const remainders: { index: number; remainder: bigint }[] = [];
  let allocated = 0;
  effective.forEach((w, index) => {
    const product = BigInt(total_fen) * BigInt(w);
    const share = product / BigInt(effectiveSum);
    parts.push(Number(share));
    allocated += Number(share);
    remainders.push({ index, remainder: product % BigInt(effectiveSum) });
  });
  remainders.sort((a, b) => (a.remainder === b.remainder ? a.index - b.index : a.remainder > b.remainder ? -1 : 1));
  for (let i = 0; allocated < total_fen; i++) {
    const slot = remainders[i % remainders.length]!;
    parts[slot.index]! += 1;
    allocated += 1;
  }
  assert(sumFen(parts) === total_fen, 'allocation must sum to the total');
  return parts;
}
