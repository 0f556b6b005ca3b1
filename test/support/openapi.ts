import { createHash } from 'node:crypto';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { ERROR_CODES } from '../../src/platform/errors.ts';
import type { Harness } from './harness.ts';

/**
 * The operations of the OpenAPI document the app serves, and what the generic tests (the fuzz
 * and the access matrix) need to call each one: everything is read from the document, so an
 * endpoint added later is covered without touching those tests.
 */

export type JsonSchema = {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
  items?: JsonSchema;
  minItems?: number;
  maxItems?: number;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: boolean | number;
  exclusiveMaximum?: boolean | number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  format?: string;
  enum?: unknown[];
  const?: unknown;
  default?: unknown;
  nullable?: boolean;
  oneOf?: JsonSchema[];
  anyOf?: JsonSchema[];
  allOf?: JsonSchema[];
};

export interface Parameter {
  name: string;
  in: 'path' | 'query' | 'header' | 'cookie';
  required?: boolean;
  schema: JsonSchema;
}

export interface Operation {
  /** "METHOD /path" with the document's {templates}: the key of the matrix table. */
  key: string;
  method: string;
  path: string;
  parameters: Parameter[];
  body: JsonSchema | undefined;
  bodyRequired: boolean;
  /** `security: []` in the document: the operation is public. */
  public: boolean;
  /** The summary says the Idempotency-Key header is required (the document does not declare it as a parameter). */
  requiresIdempotencyKey: boolean;
}

const METHODS = ['get', 'put', 'post', 'delete', 'patch'] as const;

export async function readOperations(h: Harness): Promise<Operation[]> {
  const response = await h.http.inject({ method: 'GET', url: '/docs/json' });
  if (response.statusCode !== 200) throw new Error(`GET /docs/json answered ${response.statusCode}`);
  const document = response.json() as { paths: Record<string, Record<string, any>> };
  const operations: Operation[] = [];
  for (const [path, item] of Object.entries(document.paths)) {
    for (const method of METHODS) {
      const op = item[method];
      if (!op) continue;
      const content = op.requestBody?.content as Record<string, { schema: JsonSchema }> | undefined;
      operations.push({
        key: `${method.toUpperCase()} ${path}`,
        method: method.toUpperCase(),
        path,
        parameters: (op.parameters ?? []) as Parameter[],
        body: content?.['application/json']?.schema,
        bodyRequired: op.requestBody?.required === true,
        public: Array.isArray(op.security) && op.security.length === 0,
        requiresIdempotencyKey: /requires an idempotency-key header/i.test(op.summary ?? ''),
      });
    }
  }
  return operations;
}

/** The URL of an operation with its path parameters filled in (each value URL-encoded) and a query. */
export function urlOf(op: Operation, pathValues: Record<string, string>, query: Record<string, string> = {}): string {
  const path = op.path.replace(/\{([^}]+)\}/g, (_, name: string) => {
    const value = pathValues[name];
    if (value === undefined) throw new Error(`no value for path parameter ${name} of ${op.key}`);
    return encodeURIComponent(value);
  });
  const search = new URLSearchParams(query).toString();
  return search ? `${path}?${search}` : path;
}

/**
 * A value the schema accepts, as small as the schema allows: ids are 1, strings short, arrays at
 * their minimum. The first date-time is 2026-12-01 08:00 and every later one a day after it, so a
 * window (startsAt, endsAt, orderCutoffAt ≤ endsAt) is a window.
 */
export function validSample(schema: JsonSchema, dates = { seen: 0 }): unknown {
  if (schema.const !== undefined) return schema.const;
  if (schema.enum) return schema.enum[0];
  const branches = schema.oneOf ?? schema.anyOf;
  if (branches) return validSample(branches.find((b) => b.type !== 'null') ?? branches[0]!, dates);
  if (schema.allOf) return Object.assign({}, ...schema.allOf.map((s) => validSample(s, dates)));
  const type = Array.isArray(schema.type) ? schema.type.find((t) => t !== 'null') : schema.type;
  switch (type) {
    case 'object': {
      const sample: Record<string, unknown> = {};
      for (const name of schema.required ?? []) sample[name] = validSample(schema.properties?.[name] ?? {}, dates);
      return sample;
    }
    case 'array':
      return Array.from({ length: schema.minItems ?? 0 }, () => validSample(schema.items ?? {}, dates));
    case 'integer':
    case 'number': {
      const [low, high] = numericRange(schema);
      return Math.min(Math.max(1, low), high);
    }
    case 'boolean':
      return true;
    case 'null':
      return null;
    case 'string':
      return sampleString(schema, dates);
    default:
      return {};
  }
}

/** The smallest and largest integer the schema allows. */
export function numericRange(schema: JsonSchema): [number, number] {
  let low = schema.minimum ?? Number.MIN_SAFE_INTEGER;
  let high = schema.maximum ?? Number.MAX_SAFE_INTEGER;
  if (schema.exclusiveMinimum === true) low += 1;
  if (typeof schema.exclusiveMinimum === 'number') low = schema.exclusiveMinimum + 1;
  if (schema.exclusiveMaximum === true) high -= 1;
  if (typeof schema.exclusiveMaximum === 'number') high = schema.exclusiveMaximum - 1;
  return [low, high];
}

function sampleString(schema: JsonSchema, dates: { seen: number }): string {
  if (schema.format === 'date-time') return (dates.seen++ === 0 ? '2026-12-01T08:00:00Z' : '2026-12-02T08:00:00Z');
  if (schema.format === 'date') return '2026-12-01';
  if (schema.format === 'uri' || schema.format === 'url') return 'https://example.com/return';
  if (schema.pattern) {
    // The document's patterns for numbers of a fixed length: "^\d{23}$", "^P\d{23}$".
    const fixed = /^\^([A-Z]*)\\d\{(\d+)\}\$$/.exec(schema.pattern);
    if (fixed) return fixed[1]! + '1'.padStart(Number(fixed[2]), '0');
  }
  return 'x'.repeat(Math.max(1, schema.minLength ?? 1));
}

/** Validates values against the document's schemas, so a generated bad input is known to be bad. */
export function schemaValidator(): (schema: JsonSchema, value: unknown) => boolean {
  const ajv = new Ajv({ strict: false, allErrors: false, validateFormats: true });
  (addFormatsModule as unknown as (a: Ajv) => void)(ajv);
  const compiled = new Map<JsonSchema, ValidateFunction>();
  return (schema, value) => {
    let validate = compiled.get(schema);
    if (!validate) {
      validate = ajv.compile(asDraft7(schema) as object);
      compiled.set(schema, validate);
    }
    return validate(value) as boolean;
  };
}

/** OpenAPI 3.0 writes exclusive bounds as booleans beside minimum/maximum (draft 4); Ajv reads draft 7. */
function asDraft7(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(asDraft7);
  if (!schema || typeof schema !== 'object') return schema;
  const copy: Record<string, unknown> = Object.fromEntries(Object.entries(schema).map(([k, v]) => [k, k === 'enum' || k === 'const' || k === 'default' ? v : asDraft7(v)]));
  if (copy.exclusiveMinimum === true) [copy.exclusiveMinimum, copy.minimum] = [copy.minimum, undefined];
  if (copy.exclusiveMaximum === true) [copy.exclusiveMaximum, copy.maximum] = [copy.maximum, undefined];
  if (copy.exclusiveMinimum === false) delete copy.exclusiveMinimum;
  if (copy.exclusiveMaximum === false) delete copy.exclusiveMaximum;
  for (const k of Object.keys(copy)) if (copy[k] === undefined) delete copy[k];
  return copy;
}

/** The role an operation is meant for, read from its path: admin routes under /admin, public ones public, the rest the buyer's. */
export function intendedRole(op: Operation): 'admin' | 'buyer' | undefined {
  if (op.public) return undefined;
  if (op.path.startsWith('/admin/')) return 'admin';
  return 'buyer';
}

/** Every answer of an expected failure carries a code from the one table, with that code's status. */
export function errorCodeProblem(status: number, body: string): string | undefined {
  let parsed: { code?: unknown };
  try {
    parsed = JSON.parse(body);
  } catch {
    return `body is not JSON: ${body.slice(0, 200)}`;
  }
  const code = parsed.code;
  if (typeof code !== 'string' || !(code in ERROR_CODES)) return `code ${JSON.stringify(code)} is not in the error table`;
  const expected = ERROR_CODES[code as keyof typeof ERROR_CODES].status;
  if (expected !== status) return `code ${code} has status ${expected} in the table but was answered ${status}`;
  return undefined;
}

/**
 * One checksum per table (rows, every column) across every database of the app: a request that
 * writes anything, an insert, an update or a delete, changes one.
 */
export async function tableChecksums(h: Harness): Promise<Record<string, string>> {
  const sums: Record<string, string> = {};
  for (const [index, db] of h.app.databases.entries()) {
    const tables = await db.introspection.getTables();
    for (const table of tables) {
      if (table.isView) continue;
      const rows = await (db as any).selectFrom(table.name).selectAll().execute();
      const lines = rows.map((row: Record<string, unknown>) => JSON.stringify(row, (_k, v) => (typeof v === 'bigint' ? v.toString() : v))).sort();
      sums[`${index}:${table.name}`] = `${rows.length}:${createHash('sha256').update(lines.join('\n')).digest('hex').slice(0, 16)}`;
    }
  }
  return sums;
}

/** The tables whose checksums differ between two snapshots. */
export function changedTables(before: Record<string, string>, after: Record<string, string>): string[] {
  return [...new Set([...Object.keys(before), ...Object.keys(after)])].filter((t) => before[t] !== after[t]).sort();
}
