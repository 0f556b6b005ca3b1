import { z } from 'zod';

/**
 * What the edge accepts as a number in a path or query string: canonical decimal only. `0x10`,
 * `1e3`, `00001`, ` 1` and `+1` are not numbers here (Number() would read them as 16, 1000, 1, 1, 1).
 */
export const CANONICAL_ID = /^[1-9][0-9]{0,15}$/;
const CANONICAL_INTEGER = /^(0|[1-9][0-9]{0,15})$/;

/** A positive id in a path (`/admin/activities/{id}`) or a query string. */
export const pathId = paramInt(1, Number.MAX_SAFE_INTEGER, CANONICAL_ID, 'an id is a positive integer in canonical decimal');

/**
 * An integer from min to max in a path or query string, canonical decimal. The document shows it
 * as the integer it is (the text rule as its pattern).
 */
export function paramInt(min: number, max: number, pattern = CANONICAL_INTEGER, message = 'an integer in canonical decimal') {
  return z
    .string()
    .regex(pattern, message)
    .transform(Number)
    .pipe(z.number().int().min(min).max(max))
    .meta({ type: 'integer', minimum: min, maximum: max });
}

/**
 * Characters no name, address or remark carries, refused anywhere in a JSON body, a query
 * string or a path: C0 controls but tab and line feed, DEL and C1 controls, and the bidi
 * embeddings, overrides and isolates that make text read other than it is stored (U+202A–U+202E,
 * U+2066–U+2069). Lone surrogates are refused too (PostgreSQL refuses their invalid UTF-8).
 */
const UNSAFE_CHARACTER = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

/** The path (as `a.b.0`) of the first string in `value` that carries an unsafe character, if any. */
export function unsafeTextAt(value: unknown, path: string[] = [], depth = 0): string | undefined {
  if (typeof value === 'string') return UNSAFE_CHARACTER.test(value) || !value.isWellFormed() ? path.join('.') || '(body)' : undefined;
  if (depth > 32 || value === null || typeof value !== 'object') return undefined;
  for (const [key, item] of Object.entries(value)) {
    const found = unsafeTextAt(key, [...path, '(key)'], depth + 1) ?? unsafeTextAt(item, [...path, key], depth + 1);
    if (found) return found;
  }
  return undefined;
}
