import { createHash, randomUUID } from 'node:crypto';
import type { ExpressionBuilder, Transaction } from 'kysely';

import { affected, ignoreDuplicates } from '../platform/db/sql.ts';
import { AppError } from '../platform/errors.ts';
import type { OrdersDb, OrdersTables, OrdersTransaction } from './tables.ts';

/**
 * Idempotent submission, scoped to the buyer. The first request with a key claims it and
 * fixes the checkout number; the same key and body later gets the first response; the same key
 * with another body is `idempotency_key_reused`. A claim whose holder died is taken over
 * after its lease, with the same checkout number, so every step re-runs idempotently. Each claim
 * has its own lease token: only the current holder may complete the key, give it up, or undo
 * what was done under the checkout number; a holder that outlived its lease finds out and stops.
 */
export const MAX_IDEMPOTENCY_KEY_LENGTH = 128;
/**
 * Far longer than any checkout takes; a takeover is only for holders that died. An operator
 * may shorten it (TUANGOU_CHECKOUT_LEASE_MS, at least 2 s) to recover faster from crashes; the
 * crash test does, so that a killed checkout is cleaned up within its run.
 */
export const IDEMPOTENCY_LEASE_MS = leaseFromEnv(process.env.TUANGOU_CHECKOUT_LEASE_MS, 120_000);

function leaseFromEnv(value: string | undefined, fallback: number): number {
  if (value === undefined || value === '') return fallback;
  const lease = Number(value);
  if (!Number.isSafeInteger(lease) || lease < 2_000) throw new Error(`TUANGOU_CHECKOUT_LEASE_MS must be an integer of at least 2000, got "${value}"`);
  return lease;
}
/** A duplicate waits for the first request this many times before giving up. */
const MAX_WAIT_POLLS = 250;
const WAIT_POLL_MS = 20;

export type Claim =
  | { kind: 'new'; checkoutNo: string; leaseToken: string }
  | { kind: 'resumed'; checkoutNo: string; leaseToken: string }
  | { kind: 'replay'; status: number; body: unknown };

export interface KeyRef {
  buyerId: number;
  key: string;
}

/** Thrown inside the order's transaction when another claim has taken the key over. */
export class LeaseLost extends Error {
  constructor() {
    super('the idempotency lease was taken over by another request');
    this.name = 'LeaseLost';
  }
}

export function requestHash(body: unknown): string {
  return createHash('sha256').update(canonicalJson(body)).digest('hex');
}

/** JSON with object keys sorted, so the same body in another key order hashes the same. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([key, v]) => `${JSON.stringify(key)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

export async function claimIdempotencyKey(
  db: OrdersDb,
  claim: { buyerId: number; key: string; hash: string; checkoutNo: string },
  now: () => number,
): Promise<Claim> {
  const leaseToken = randomUUID();
  for (let poll = 0; poll < MAX_WAIT_POLLS; poll++) {
    const now_ms = now();
    const inserted = await db
      .insertInto('idempotency_keys')
      .values({
        buyer_id: claim.buyerId,
        idem_key: claim.key,
        request_hash: claim.hash,
        checkout_no: claim.checkoutNo,
        state: 'in_progress',
        response_status: null,
        response_body: null,
        lease_token: leaseToken,
        locked_until_ms: now_ms + IDEMPOTENCY_LEASE_MS,
        created_at_ms: now_ms,
      })
      .$call(ignoreDuplicates(db))
      .executeTakeFirst();
    if (Number(inserted.numInsertedOrUpdatedRows ?? 0n) === 1) return { kind: 'new', checkoutNo: claim.checkoutNo, leaseToken };

    const row = await db
      .selectFrom('idempotency_keys')
      .selectAll()
      .where('buyer_id', '=', claim.buyerId)
      .where('idem_key', '=', claim.key)
      .executeTakeFirst();
    if (!row) continue; // abandoned meanwhile: claim it afresh
    if (row.request_hash !== claim.hash) throw new AppError('idempotency_key_reused', { field: 'Idempotency-Key' });
    if (row.state === 'completed') {
      return { kind: 'replay', status: row.response_status ?? 200, body: JSON.parse(row.response_body ?? 'null') };
    }
    if (row.locked_until_ms <= now_ms) {
      const taken = await db
        .updateTable('idempotency_keys')
        .set({ locked_until_ms: now_ms + IDEMPOTENCY_LEASE_MS, lease_token: leaseToken })
        .where('buyer_id', '=', claim.buyerId)
        .where('idem_key', '=', claim.key)
        .where('state', '=', 'in_progress')
        .where('locked_until_ms', '=', row.locked_until_ms)
        .executeTakeFirst();
      if (affected(taken) === 1) return { kind: 'resumed', checkoutNo: row.checkout_no, leaseToken };
    }
    await new Promise((resolve) => setTimeout(resolve, WAIT_POLL_MS));
  }
  throw new AppError('idempotency_request_in_progress', { field: 'Idempotency-Key' });
}

/** The key's row, while this claim holds it. */
function heldBy(key: KeyRef, leaseToken: string) {
  return (eb: ExpressionBuilder<OrdersTables, 'idempotency_keys'>) =>
    eb.and([eb('buyer_id', '=', key.buyerId), eb('idem_key', '=', key.key), eb('state', '=', 'in_progress'), eb('lease_token', '=', leaseToken)]);
}

/**
 * Records the response, if this claim still holds the key; inside the order's transaction
 * when the order was placed. Returns false when the lease was lost.
 */
export async function completeIdempotencyKey(
  db: OrdersDb | OrdersTransaction,
  key: KeyRef,
  leaseToken: string,
  response: { status: number; body: unknown },
): Promise<boolean> {
  const result = await db
    .updateTable('idempotency_keys')
    .set({ state: 'completed', response_status: response.status, response_body: JSON.stringify(response.body), locked_until_ms: 0 })
    .where(heldBy(key, leaseToken))
    .executeTakeFirst();
  return affected(result) === 1;
}

/** A resumed claim starts over under a fresh checkout number; false if the lease was lost. */
export async function moveIdempotencyKey(db: OrdersDb, key: KeyRef, leaseToken: string, checkoutNo: string): Promise<boolean> {
  const result = await db
    .updateTable('idempotency_keys')
    .set({ checkout_no: checkoutNo })
    .where(heldBy(key, leaseToken))
    .executeTakeFirst();
  return affected(result) === 1;
}

/** After a failure that placed nothing, the key is freed so the client may retry; false if the lease was lost. */
export async function abandonIdempotencyKey(db: OrdersDb, key: KeyRef, leaseToken: string): Promise<boolean> {
  const result = await db
    .deleteFrom('idempotency_keys')
    .where(heldBy(key, leaseToken))
    .executeTakeFirst();
  return affected(result) === 1;
}

/**
 * The key of a checkout number whose holder is gone, taken away from it so nobody resumes
 * that checkout number: returns the key, or undefined if a live holder still has it.
 */
export async function seizeAbandonedKey(
  db: OrdersDb,
  checkoutNo: string,
  now_ms: number,
): Promise<{ found: false } | { found: true; seized: KeyRef & { leaseToken: string } } | { found: true; seized: undefined; state: string }> {
  const row = await db
    .selectFrom('idempotency_keys')
    .select(['buyer_id', 'idem_key', 'state', 'locked_until_ms'])
    .where('checkout_no', '=', checkoutNo)
    .executeTakeFirst();
  if (!row) return { found: false };
  if (row.state !== 'in_progress' || row.locked_until_ms > now_ms) return { found: true, seized: undefined, state: row.state };
  const leaseToken = randomUUID();
  const taken = await db
    .updateTable('idempotency_keys')
    .set({ lease_token: leaseToken, locked_until_ms: now_ms + IDEMPOTENCY_LEASE_MS })
    .where('buyer_id', '=', row.buyer_id)
    .where('idem_key', '=', row.idem_key)
    .where('state', '=', 'in_progress')
    .where('locked_until_ms', '=', row.locked_until_ms)
    .executeTakeFirst();
  if (affected(taken) === 0) return { found: true, seized: undefined, state: 'in_progress' };
  return { found: true, seized: { buyerId: row.buyer_id, key: row.idem_key, leaseToken } };
}

/** What the key holds for a submission now: its request's hash, and the answer if one was recorded; undefined if unused. */
export async function keyAnswer(db: OrdersDb, key: KeyRef): Promise<{ hash: string; inProgress: boolean; status: number; body: unknown } | undefined> {
  const row = await db
    .selectFrom('idempotency_keys')
    .select(['request_hash', 'state', 'response_status', 'response_body'])
    .where('buyer_id', '=', key.buyerId)
    .where('idem_key', '=', key.key)
    .executeTakeFirst();
  if (!row) return undefined;
  return { hash: row.request_hash, inProgress: row.state === 'in_progress', status: row.response_status ?? 200, body: JSON.parse(row.response_body ?? 'null') };
}
