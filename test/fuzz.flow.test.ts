import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBuyer } from '../src/buyers/index.ts';
import { createMerchant } from '../src/catalog/index.ts';
import { MAX_BODY_BYTES } from '../src/platform/http/server.ts';
import { availableEngines } from './support/engines.ts';
import { newKey, seedActivity, startHarness, type Harness } from './support/harness.ts';
import {
  badValueFor,
  closedObjectsOf,
  encodeSegment,
  hostileString,
  isFreeText,
  isNonCanonicalNumber,
  PARAMETER_VALUES,
  parameterAccepts,
  PROTOTYPE_KEYS,
  RAW_PATH_SEGMENTS,
  slotsOf,
  TEMPTING_KEYS,
  unsafeText,
  withValue,
} from './support/bad-input.ts';
import {
  changedTables,
  errorCodeProblem,
  intendedRole,
  numericRange,
  readOperations,
  schemaValidator,
  tableChecksums,
  urlOf,
  validSample,
  type Operation,
} from './support/openapi.ts';

/**
 * Every operation of the OpenAPI document the app serves, fed generated bad input: wrong types,
 * numbers past their range, strings past their length, hostile unicode, injection strings,
 * prototype keys, missing and unknown fields, malformed JSON, wrong content types, bodies past
 * the limit, bad path and query parameters. The invariant: every answer is a 4xx carrying a code
 * from the error table (never a 5xx), and nothing is written to any table. Everything is read
 * from the document, so an endpoint added later is fuzzed without touching this file.
 */

/** Generated requests per operation; ~45 operations × this stays well under a minute on SQLite. */
const RUNS_PER_OPERATION = 200;

/**
 * Bad input the platform still mishandles, each a numbered defect of issue 10 being fixed on
 * another branch. While an entry is listed, the requests it names are not generated; remove the
 * entry when its fix is merged and the fuzz covers those requests again. The expectation for them
 * is the generic one: a 4xx with a code from the error table, nothing written.
 */
const fixedElsewhere: { issue10Item: number; what: string; applies: (op: Operation, request: BadRequest) => boolean }[] = [];
/** Fastify's router refuses a path parameter past its maxParamLength (100) or not valid UTF-8, before any route runs. */
function fastifyRefusesSegment(rawSegment: string): boolean {
  try {
    return decodeURIComponent(rawSegment).length > 100;
  } catch {
    return true;
  }
}
const isListed = (op: Operation, request: BadRequest) => fixedElsewhere.some((d) => d.applies(op, request));

/**
 * Defects this test found that issue 10 does not list (reported with the branch); the same
 * treatment as fixedElsewhere until they are fixed.
 */
const foundHere: { what: string; applies: (op: Operation, request: BadRequest) => boolean }[] = [];
const isFoundHere = (op: Operation, request: BadRequest) => foundHere.some((d) => d.applies(op, request));

/** Operations whose answers follow a payment channel's protocol, not the error table (the body is the channel's). */
const CHANNEL_PROTOCOL_ANSWERS = new Set(['POST /payments/notify/{channel}']);

interface BadRequest {
  kind:
    | 'body-not-object'
    | 'field-bad'
    | 'field-missing'
    | 'field-unknown'
    | 'unsafe-text'
    | 'malformed-json'
    | 'wrong-content-type'
    | 'too-large'
    | 'no-body'
    | 'path-bad'
    | 'non-canonical-number'
    | 'path-absent'
    | 'query-bad'
    | 'unexpected-body'
    | 'idempotency-key'
    | 'noise';
  /** refused: must be a 4xx with a code; harmless: must not fail (no 5xx) and must write nothing. */
  expect: 'refused' | 'harmless';
  url: string;
  headers: Record<string, string>;
  payload?: string;
  /** The path segment as sent (percent-encoded), for the path cases. */
  rawSegment?: string;
}


function requestsFor(h: Harness, op: Operation, buyerId: number, validate: ReturnType<typeof schemaValidator>): fc.Arbitrary<BadRequest> {
  const role = intendedRole(op);
  const token = role === 'admin' ? h.adminToken() : role === 'buyer' ? h.buyerToken(buyerId) : undefined;
  const baseHeaders: Record<string, string> = {
    ...(token && { authorization: `Bearer ${token}` }),
    ...(op.method !== 'GET' && { 'idempotency-key': newKey() }),
  };
  const pathParameters = op.parameters.filter((p) => p.in === 'path');
  const queryParameters = op.parameters.filter((p) => p.in === 'query');
  const basePath = Object.fromEntries(pathParameters.map((p) => [p.name, String(validSample(p.schema))]));
  const baseQuery = Object.fromEntries(queryParameters.filter((p) => p.required).map((p) => [p.name, String(validSample(p.schema))]));
  const baseUrl = urlOf(op, basePath, baseQuery);
  const baseBody = op.body ? validSample(op.body) : undefined;
  const json = (body: unknown) => ({ 'content-type': 'application/json', payload: JSON.stringify(body) });
  const withJsonBody = (kind: BadRequest['kind'], body: unknown): BadRequest => {
    const { 'content-type': contentType, payload } = json(body);
    return { kind, expect: 'refused', url: baseUrl, headers: { ...baseHeaders, 'content-type': contentType }, payload };
  };
  const bodyIsInvalid = (r: BadRequest) => r.payload === undefined || !op.body || !validate(op.body, JSON.parse(r.payload));
  const arbitraries: fc.Arbitrary<BadRequest>[] = [];

  if (op.body) {
    const body = op.body;
    const slots = slotsOf(body, baseBody);
    arbitraries.push(fc.jsonValue({ maxDepth: 2 }).map((value) => withJsonBody('body-not-object', value)).filter(bodyIsInvalid));
    if (slots.length) {
      arbitraries.push(
        fc
          .constantFrom(...slots)
          .chain((slot) => badValueFor(slot.schema).map((value) => withJsonBody('field-bad', withValue(baseBody, slot.path, value))))
          .filter(bodyIsInvalid),
      );
    }
    const required = slots.filter((s) => s.required && s.path.length > 0);
    if (required.length) arbitraries.push(fc.constantFrom(...required).map((slot) => withJsonBody('field-missing', withValue(baseBody, slot.path, undefined))).filter(bodyIsInvalid));
    const closed = closedObjectsOf(body, baseBody);
    if (closed.length) {
      arbitraries.push(
        fc
          .tuple(fc.constantFrom(...closed), fc.oneof(fc.constantFrom(...PROTOTYPE_KEYS, ...TEMPTING_KEYS), fc.string({ minLength: 1, maxLength: 20 })), fc.jsonValue({ maxDepth: 1 }))
          .filter(([object, key]) => !object.known.includes(key))
          .map(([object, key, value]) => withJsonBody('field-unknown', withValue(baseBody, [...object.path, key], value)))
          .filter(bodyIsInvalid),
      );
    }
    const text = slots.filter((s) => isFreeText(s.schema));
    if (text.length) {
      arbitraries.push(fc.tuple(fc.constantFrom(...text), unsafeText).map(([slot, value]) => withJsonBody('unsafe-text', withValue(baseBody, slot.path, value))));
    }
    arbitraries.push(
      fc
        .oneof(fc.constantFrom('{', '{"a":', '[', 'nul', '{"a":1,}', "{'a':1}", '{"a":1}{"b":2}', '{"a":"\\x"}', '\u0000', '{"a":1e999999}'), fc.string({ maxLength: 30 }))
        .filter((text) => {
          try {
            return !validate(body, JSON.parse(text));
          } catch {
            return true;
          }
        })
        .map((payload) => ({ kind: 'malformed-json' as const, expect: 'refused' as const, url: baseUrl, headers: { ...baseHeaders, 'content-type': 'application/json' }, payload })),
    );
    arbitraries.push(
      fc
        .constantFrom('text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/xml', 'text/json', 'application/octet-stream', '')
        .map((contentType) => {
          const headers = { ...baseHeaders, ...(contentType && { 'content-type': contentType }) };
          return { kind: 'wrong-content-type' as const, expect: 'refused' as const, url: baseUrl, headers, payload: JSON.stringify(baseBody) };
        }),
    );
    arbitraries.push(
      fc.constant({ kind: 'too-large' as const, expect: 'refused' as const, url: baseUrl, headers: { ...baseHeaders, 'content-type': 'application/json' }, payload: JSON.stringify({ padding: 'a'.repeat(MAX_BODY_BYTES) }) }),
    );
    if (op.bodyRequired) arbitraries.push(fc.constant({ kind: 'no-body' as const, expect: 'refused' as const, url: baseUrl, headers: { ...baseHeaders } }));
  } else if (op.method !== 'GET') {
    // A body the operation does not declare: whatever it is, nothing fails and nothing is written.
    arbitraries.push(
      fc
        .tuple(fc.oneof(hostileString, fc.jsonValue({ maxDepth: 2 }).map((v) => JSON.stringify(v))), fc.constantFrom('application/json', 'text/plain', 'application/xml', 'application/x-www-form-urlencoded'))
        .map(([payload, contentType]) => ({ kind: 'unexpected-body' as const, expect: 'harmless' as const, url: baseUrl, headers: { ...baseHeaders, 'content-type': contentType }, payload })),
    );
  }
  const baseBodyHeaders = op.body ? json(baseBody) : undefined;
  const withValidBody = (kind: BadRequest['kind'], url: string, expect: BadRequest['expect'] = 'refused'): BadRequest => ({
    kind,
    expect,
    url,
    headers: { ...baseHeaders, ...(baseBodyHeaders && { 'content-type': baseBodyHeaders['content-type'] }) },
    ...(baseBodyHeaders && { payload: baseBodyHeaders.payload }),
  });

  if (pathParameters.length) {
    arbitraries.push(
      fc
        .tuple(fc.constantFrom(...pathParameters), fc.oneof({ weight: 5, arbitrary: PARAMETER_VALUES.map((v) => ({ value: v, raw: false })) }, { weight: 1, arbitrary: fc.constantFrom(...RAW_PATH_SEGMENTS).map((v) => ({ value: v, raw: true })) }))
        .filter(([parameter, { value, raw }]) => raw || (encodeSegment(value) !== undefined && !parameterAccepts(validate, parameter, value)))
        .map(([parameter, { value, raw }]) => {
          const kind = !raw && isNonCanonicalNumber(parameter, value) ? 'non-canonical-number' : 'path-bad';
          const rawSegment = raw ? value : encodeSegment(value)!;
          const url = urlOf(op, { ...basePath, [parameter.name]: '\u0001' }, baseQuery).replace('%01', rawSegment);
          return { ...withValidBody(kind, url), rawSegment };
        }),
    );
    // Well-formed ids of nothing: refused, and nothing written (a read may answer an empty list).
    // A parameter from a closed list (a channel) names nothing only when outside the list, which
    // path-bad sends already: every value in the list is a real one.
    const naming = pathParameters.filter((parameter) => !parameter.schema.enum);
    if (naming.length) arbitraries.push(
      fc.constantFrom(...naming).map((parameter) => {
        const type = parameter.schema.type;
        const absent = type === 'integer' || type === 'number' ? String(Math.min(999_999_999, numericRange(parameter.schema)[1])) : String(validSample(parameter.schema)).replace(/1$/, '9');
        return withValidBody('path-absent', urlOf(op, { ...basePath, [parameter.name]: absent }, baseQuery), op.method === 'GET' ? 'harmless' : 'refused');
      }),
    );
  }
  if (queryParameters.length) {
    arbitraries.push(
      fc
        .tuple(fc.constantFrom(...queryParameters), PARAMETER_VALUES)
        .filter(([parameter, value]) => !parameterAccepts(validate, parameter, value))
        .map(([parameter, value]) => withValidBody(isNonCanonicalNumber(parameter, value) ? 'non-canonical-number' : 'query-bad', urlOf(op, basePath, { ...baseQuery, [parameter.name]: value }))),
    );
  }
  if (op.requiresIdempotencyKey) {
    // A valid request with the key missing, empty, too long or not printable ASCII.
    arbitraries.push(
      fc.oneof(fc.constant(undefined), fc.constantFrom('', ' ', 'k'.repeat(129), 'k'.repeat(1000), 'ключ', 'key with spaces', 'é', '\t'), hostileString.filter((k) => !/^[\x21-\x7e]{1,64}$/.test(k))).map((key) => {
        const request = withValidBody('idempotency-key', baseUrl);
        const { 'idempotency-key': _, ...headers } = request.headers;
        return { ...request, headers: key === undefined ? headers : { ...headers, 'idempotency-key': key } };
      }),
    );
  }
  if (op.method === 'GET') {
    // Unknown query parameters and hostile headers on a read: ignored or refused, never a failure or a write.
    arbitraries.push(
      fc
        .tuple(fc.constantFrom('__proto__', 'constructor[prototype]', 'buyerId', 'limit[]', 'x'), hostileString, hostileString.filter((s) => /^[\x20-\x7e]*$/.test(s)))
        .map(([name, value, requestId]) => ({
          kind: 'noise' as const,
          expect: 'harmless' as const,
          url: `${baseUrl}${baseUrl.includes('?') ? '&' : '?'}${encodeURIComponent(name)}=${encodeSegment(value) ?? '%FF'}`,
          headers: { ...baseHeaders, 'x-request-id': requestId || 'r', accept: 'text/html, */*' },
        })),
    );
  }
  return fc.oneof(...arbitraries).filter((request) => !isListed(op, request) && !isFoundHere(op, request));
}

/** What is wrong with one answer, or undefined. */
function problemOf(op: Operation, request: BadRequest, status: number, body: string): string | undefined {
  if (status >= 500) return `answered ${status}: ${body.slice(0, 300)}`;
  // A channel's protocol answers a rejected notification as it wants (Alipay: 200 "failure").
  if (CHANNEL_PROTOCOL_ANSWERS.has(op.key)) return undefined;
  if (request.expect === 'refused' && (status < 400 || status >= 500)) return `answered ${status} to bad input: ${body.slice(0, 300)}`;
  if (status < 400) return undefined;
  return errorCodeProblem(status, body);
}

for (const engine of availableEngines()) {
  describe(`fuzzing every operation of the OpenAPI document on ${engine.name}`, () => {
    let h: Harness;
    let buyerId: number;
    beforeAll(async () => {
      // No worker: nothing in the background writes, so a changed table is a request's doing.
      h = await startHarness(engine, { sandbox: {}, worker: false });
      // Merchant 1, the one the sample ids name, has no channel account: a request that is valid
      // apart from what the operation ignores (a DELETE's stray body) removes nothing of the
      // onboarded merchant seedActivity makes, as the sample order and checkout numbers name none.
      await createMerchant(h.app.db, { name: 'Merchant without channel accounts' }, h.app.now());
      await seedActivity(h.app, { skus: [{ price_fen: 1000, stock: 100 }] });
      buyerId = (await createBuyer(h.app.db, { name: 'Fuzzed buyer' }, h.app.now())).id;
    });
    afterAll(async () => h?.close());

    it('starts every case one step from a valid request: the sample body and parameters the schema accepts', async () => {
      const validate = schemaValidator();
      const invalid: string[] = [];
      for (const op of await readOperations(h)) {
        if (op.body && !validate(op.body, validSample(op.body))) invalid.push(`${op.key} body ${JSON.stringify(validSample(op.body))}`);
        for (const p of op.parameters) if (!parameterAccepts(validate, p, String(validSample(p.schema)))) invalid.push(`${op.key} ${p.in} ${p.name}`);
      }
      expect(invalid, 'extend validSample in test/support/openapi.ts for these schemas').toEqual([]);
    });

    it('answers every bad input to every operation with a 4xx and a code from the error table, writing nothing', async () => {
      const operations = await readOperations(h);
      expect(operations.length).toBeGreaterThan(40);
      const validate = schemaValidator();
      const failures: string[] = [];
      const kindsSent = new Map<string, number>();
      for (const op of operations) {
        const before = await tableChecksums(h);
        const result = await fc.check(
          fc.asyncProperty(requestsFor(h, op, buyerId, validate), async (request) => {
            kindsSent.set(request.kind, (kindsSent.get(request.kind) ?? 0) + 1);
            let response;
            try {
              response = await h.http.inject({ method: op.method as 'GET', url: request.url, headers: request.headers, ...(request.payload !== undefined && { payload: request.payload }) });
            } catch (error) {
              // A header value HTTP cannot carry (a control character, past latin-1) never reaches the server.
              if ((error as NodeJS.ErrnoException).code === 'ERR_INVALID_CHAR') return;
              throw error;
            }
            const problem = problemOf(op, request, response.statusCode, response.body);
            if (problem) throw new Error(`${request.kind}: ${op.method} ${request.url} ${JSON.stringify(request.payload?.slice(0, 300))} → ${problem}`);
          }),
          { numRuns: RUNS_PER_OPERATION },
        );
        if (result.failed) {
          const message = (result.errorInstance as Error | undefined)?.message ?? String(result.errorInstance);
          failures.push(`${op.key}: ${message} (to replay: fc.check(…, { seed: ${result.seed}, path: "${result.counterexamplePath}" }))`);
        }
        const written = changedTables(before, await tableChecksums(h));
        if (written.length) failures.push(`${op.key}: bad input wrote to ${written.join(', ')}`);
      }
      expect(failures).toEqual([]);
      // The generators reach every kind of bad input the document allows (a kind listed in fixedElsewhere is left out).
      for (const kind of ['body-not-object', 'field-bad', 'field-missing', 'field-unknown', 'malformed-json', 'wrong-content-type', 'too-large', 'no-body', 'path-bad', 'path-absent', 'query-bad', 'unexpected-body', 'idempotency-key', 'noise']) {
        expect(kindsSent.get(kind) ?? 0, kind).toBeGreaterThan(0);
      }
    });
  });
}
