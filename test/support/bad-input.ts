import fc from 'fast-check';
import { numericRange, validSample, type JsonSchema, type Parameter, type schemaValidator } from './openapi.ts';

/** The pieces of bad input the fuzz test (test/fuzz.flow.test.ts) builds its requests from. */

export const HOSTILE_STRINGS = [
  "' OR '1'='1",
  '1; DROP TABLE orders; --',
  "'); SELECT pg_sleep(5); --",
  '1 UNION SELECT * FROM buyers',
  '${7*7}',
  '{{7*7}}',
  '<script>alert(1)</script>',
  'javascript:alert(1)',
  '../../../../etc/passwd',
  '\u0000',
  'a\u0000b',
  '\u202eevil',
  '\ud800',
  '\udfff\ud800',
  '😀👍🏽',
  '\r\nSet-Cookie: a=1',
  '__proto__',
  'constructor',
  'null',
  'undefined',
  'NaN',
  'Infinity',
  '-0',
  '',
  ' ',
  '１２３',
  '١٢٣',
];
export const hostileString: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...HOSTILE_STRINGS) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 40 }) },
  { weight: 1, arbitrary: fc.constantFrom('x'.repeat(1000), 'é'.repeat(5000)) },
);
/** Control characters, bidi overrides and lone surrogates: text no name, address or remark should carry. */
export const unsafeText = fc
  .tuple(fc.constantFrom('\u0000', '\u0007', '\u001b[31m', '\u007f', '\u202e', '\u2066', '\ud800', '\udc00'), fc.string({ maxLength: 5 }))
  .map(([bad, text]) => `a${bad}${text}`);
export const PROTOTYPE_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf'];
/** Fields a client must never send (the server computes them or takes them from the token). */
export const TEMPTING_KEYS = ['buyerId', 'role', 'isAdmin', 'priceFen', 'price_fen', 'amountFen', 'payableFen', 'status', 'id'];

export function badValueFor(schema: JsonSchema): fc.Arbitrary<unknown> {
  const candidates: fc.Arbitrary<unknown>[] = [
    fc.constantFrom(null, true, false, 0, -1, 1.5, -0.5, 2 ** 53, -(2 ** 63), 1e308, '', '1', 'true', [], {}, [1], { a: 1 }),
    hostileString,
    fc.jsonValue({ maxDepth: 2 }),
  ];
  const type = Array.isArray(schema.type) ? schema.type[0] : schema.type;
  if (type === 'integer' || type === 'number') {
    const [low, high] = numericRange(schema);
    candidates.push(fc.constantFrom(low - 1, high + 1, low + 0.5, Number.MAX_SAFE_INTEGER + 2));
  }
  if (type === 'string' && schema.maxLength !== undefined) candidates.push(fc.constant('a'.repeat(schema.maxLength + 1)));
  if (type === 'array' && schema.maxItems !== undefined) candidates.push(fc.constant(Array.from({ length: schema.maxItems + 1 }, () => validSample(schema.items ?? {}))));
  return fc.oneof(...candidates);
}

export interface Slot {
  path: string[];
  schema: JsonSchema;
  /** The object holding this field has it among its required ones. */
  required: boolean;
}

/** Every field of the body the schema names, reached through the sample (objects and first array items). */
export function slotsOf(schema: JsonSchema, sample: unknown, path: string[] = []): Slot[] {
  const slots: Slot[] = [];
  const branch = schema.oneOf ?? schema.anyOf;
  if (branch) {
    const chosen = branch.find((b) => b.type !== 'null') ?? branch[0]!;
    return slotsOf(chosen, sample, path);
  }
  if (schema.properties && sample && typeof sample === 'object' && !Array.isArray(sample)) {
    for (const [name, child] of Object.entries(schema.properties)) {
      slots.push({ path: [...path, name], schema: child, required: schema.required?.includes(name) ?? false });
      const value = (sample as Record<string, unknown>)[name];
      if (value !== undefined) slots.push(...slotsOf(child, value, [...path, name]));
    }
  }
  if (schema.items && Array.isArray(sample) && sample.length > 0) {
    slots.push({ path: [...path, '0'], schema: schema.items, required: true });
    slots.push(...slotsOf(schema.items, sample[0], [...path, '0']));
  }
  return slots;
}

/** Objects of the body that refuse unknown fields. */
export function closedObjectsOf(schema: JsonSchema, sample: unknown, path: string[] = []): { path: string[]; known: string[] }[] {
  const branch = schema.oneOf ?? schema.anyOf;
  if (branch) return closedObjectsOf(branch.find((b) => b.type !== 'null') ?? branch[0]!, sample, path);
  const found: { path: string[]; known: string[] }[] = [];
  if (schema.properties && sample && typeof sample === 'object' && !Array.isArray(sample)) {
    if (schema.additionalProperties === false) found.push({ path, known: Object.keys(schema.properties) });
    for (const [name, child] of Object.entries(schema.properties)) {
      const value = (sample as Record<string, unknown>)[name];
      if (value !== undefined) found.push(...closedObjectsOf(child, value, [...path, name]));
    }
  }
  if (schema.items && Array.isArray(sample) && sample.length > 0) found.push(...closedObjectsOf(schema.items, sample[0], [...path, '0']));
  return found;
}

/** A deep copy of the sample with the value at path replaced (undefined: removed); defineProperty so "__proto__" is a plain key. */
export function withValue(sample: unknown, path: string[], value: unknown): unknown {
  const copy = JSON.parse(JSON.stringify(sample));
  if (path.length === 0) return value;
  let parent = copy;
  for (const step of path.slice(0, -1)) parent = parent[step];
  const last = path[path.length - 1]!;
  if (value === undefined) delete parent[last];
  else Object.defineProperty(parent, last, { value, enumerable: true, writable: true, configurable: true });
  return copy;
}

export const isFreeText = (schema: JsonSchema) => schema.type === 'string' && !schema.enum && !schema.pattern && !schema.format;

/** A decimal integer as the canonical form writes it, in the schema's range: what an integer parameter must be. */
function isCanonicalInteger(schema: JsonSchema, value: string): boolean {
  const [low, high] = numericRange(schema);
  return /^(0|-?[1-9]\d*)$/.test(value) && Number(value) >= low && Number(value) <= high;
}

export function parameterAccepts(validate: ReturnType<typeof schemaValidator>, parameter: Parameter, value: string): boolean {
  const type = parameter.schema.type;
  if (type === 'integer' || type === 'number') return isCanonicalInteger(parameter.schema, value);
  return validate(parameter.schema, value);
}

/** A number read leniently (Number("0x3") is 3): accepted today where only canonical decimal should be. */
export function isNonCanonicalNumber(parameter: Parameter, value: string): boolean {
  const type = parameter.schema.type;
  if (type !== 'integer' && type !== 'number') return false;
  const [low, high] = numericRange(parameter.schema);
  const n = Number(value);
  return value.trim() !== '' && Number.isInteger(n) && n >= low && n <= high && !isCanonicalInteger(parameter.schema, value);
}

export const RAW_PATH_SEGMENTS = ['%ED%A0%80', '%FF', '%00', '%2e%2e%2f', '%2F', '..', '%20', '%0a'];

export function encodeSegment(value: string): string | undefined {
  try {
    return encodeURIComponent(value);
  } catch {
    return undefined; // a lone surrogate has no UTF-8 form
  }
}

export const PARAMETER_VALUES = fc.oneof(
  fc.constantFrom('0', '-1', '1.5', 'abc', '9007199254740992', '1e400', 'NaN', 'Infinity', '0x1', '0x3', '1e0', '1e3', '01', '00001', '+1', ' 1', '1 ', '1.0', 'P1', 'alipay ', 'WECHAT'),
  hostileString,
  fc.stringMatching(/^P?\d{1,30}$/),
);
