import { assert } from './errors.ts';

/** Amounts are integer fen (分) with their currency beside them; never floats. */
export const CURRENCY = 'CNY';
export type Currency = typeof CURRENCY;

export function assertFen(amount_fen: number, what: string): number {
  assert(Number.isSafeInteger(amount_fen), () => `${what} must be a safe integer of fen, got ${amount_fen}`);
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
  const n = weights.length;
  assert(n > 0, 'allocation needs at least one part');
  let weightSum = 0;
  for (let i = 0; i < n; i++) {
    const w = weights[i]!;
    assert(Number.isSafeInteger(w) && w >= 0, () => `allocation weight must be a non-negative integer, got ${w}`);
    weightSum += w;
  }
  assert(Number.isSafeInteger(weightSum), 'allocation weights sum past 2^53');
  const even = weightSum === 0;
  const divisor = even ? n : weightSum;
  // total × weight must be exact: plain numbers while it stays below 2^53, BigInt beyond.
  if (total_fen * divisor > Number.MAX_SAFE_INTEGER || divisor * n > Number.MAX_SAFE_INTEGER) return allocateExactly(total_fen, weights, even, divisor);

  const parts = new Array<number>(n);
  const remainders = new Array<number>(n);
  let allocated = 0;
  for (let i = 0; i < n; i++) {
    const product = total_fen * (even ? 1 : weights[i]!);
    let share = Math.floor(product / divisor);
    // Near 2^53 the division may round up to the next whole number; the remainder says so.
    if (product - share * divisor < 0) share -= 1;
    parts[i] = share;
    remainders[i] = product - share * divisor;
    allocated += share;
  }
  // The fen left over (fewer than the parts with a remainder) go one each to the largest
  // remainders; ties to the earlier part.
  const leftover = total_fen - allocated;
  if (leftover > 0) {
    // Sort keys pack remainder and position into one number (larger remainder first, then
    // earlier part), so a typed-array sort does it without a comparator call per pair.
    assert(divisor * n <= Number.MAX_SAFE_INTEGER, 'allocation sort key out of range');
    const keys = new Float64Array(n);
    let count = 0;
    for (let i = 0; i < n; i++) if (remainders[i]! > 0) keys[count++] = remainders[i]! * n + (n - 1 - i);
    assert(leftover <= count, 'largest remainder left more fen than remainders');
    const sorted = keys.subarray(0, count).sort();
    for (let rank = 0; rank < leftover; rank++) parts[n - 1 - (sorted[count - 1 - rank]! % n)]! += 1;
  }
  return parts;
}

function allocateExactly(total_fen: number, weights: readonly number[], even: boolean, divisor: number): number[] {
  const total = BigInt(total_fen);
  const d = BigInt(divisor);
  const parts: number[] = [];
  const remainders: bigint[] = [];
  let allocated = 0;
  weights.forEach((w) => {
    const product = total * BigInt(even ? 1 : w);
    parts.push(Number(product / d));
    remainders.push(product % d);
    allocated += parts[parts.length - 1]!;
  });
  const order = parts.map((_, i) => i).filter((i) => remainders[i]! > 0n);
  order.sort((a, b) => (remainders[a] === remainders[b] ? a - b : remainders[a]! > remainders[b]! ? -1 : 1));
  for (let rank = 0; allocated < total_fen; rank++) {
    parts[order[rank]!]! += 1;
    allocated += 1;
  }
  assert(sumFen(parts) === total_fen, 'allocation must sum to the total');
  return parts;
}
