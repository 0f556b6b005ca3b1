import {
  abandonIdempotencyKey,
  claimIdempotencyKey,
  completeIdempotencyKey,
  checkoutView,
  findCheckout,
  keyAnswer,
  LeaseLost,
  moveIdempotencyKey,
  requestHash,
  seizeAbandonedKey,
  type KeyRef,
} from '../orders/index.ts';
import type { OrdersPlatform as Platform } from '../orders/index.ts';
import { AppError, assert, isAppError } from '../platform/errors.ts';
import { slotOfBuyer } from '../platform/shards.ts';
import { runCheckoutSteps, undoHolds, type Attempt, type CheckoutResponse, type StepsOutcome } from './steps.ts';
import { validateCheckout, type Checked, type CheckoutRequest } from './validation.ts';

/**
 * 下单: validate everything (writes nothing on bad input), claim the Idempotency-Key (fixing the
 * checkout number), then the steps (steps.ts): price on the server, hold stock, coupons and points,
 * grant the flash-sale lines, write the checkout with one order per merchant and its answer. A failed step's answer is recorded
 * by answerFailure, which runs the compensations of the steps done. Cart lines are cleared by the
 * order.placed subscriber.
 */
export async function checkout(platform: Platform, buyerId: number, idempotencyKey: string, request: CheckoutRequest): Promise<CheckoutResponse> {
  const key: KeyRef = { buyerId, key: idempotencyKey };
  const hash = requestHash(request);
  let checked: Checked;
  try {
    checked = await validateCheckout(platform, buyerId, request);
  } catch (error) {
    // A replay of a submission answers as it did (or says it is still in progress), even if the
    // catalog or the stock changed since.
    const replay = isAppError(error) ? await completedResponse(platform, key, hash) : undefined;
    if (replay) return replay;
    throw error;
  }
  const claimed = await claimAttempt(platform, key, hash);
  if ('answer' in claimed) return claimed.answer;
  const attempt: Attempt = { platform, buyerId, key, request, ...checked, ...claimed };
  const outcome = await runCheckoutSteps(attempt);
  return outcome.failed ? answerFailure(attempt, outcome) : outcome.response;
}

/**
 * The key's claim fixes this attempt's checkout number. A key left by a holder that died is taken
 * over: if the checkout was committed it is the answer; otherwise what the dead attempt held is
 * given back and this attempt starts over under a fresh checkout number, so nothing half done can
 * mix with what is done now.
 */
async function claimAttempt(platform: Platform, key: KeyRef, hash: string): Promise<{ answer: CheckoutResponse } | { checkoutNo: string; leaseToken: string }> {
  const shard = platform.shards.forBuyer(key.buyerId);
  const freshCheckoutNo = () => platform.nextOrderNo(slotOfBuyer(key.buyerId), platform.now());
  const claim = await claimIdempotencyKey(shard, { ...key, hash, checkoutNo: freshCheckoutNo() }, platform.now);
  if (claim.kind === 'replay') return { answer: { status: claim.status, body: claim.body } };
  const { leaseToken } = claim;
  if (claim.kind !== 'resumed') return { checkoutNo: claim.checkoutNo, leaseToken };
  const placed = await findCheckout(shard, claim.checkoutNo);
  if (placed) {
    const response = { status: 201, body: checkoutView(placed) };
    return { answer: (await completeIdempotencyKey(shard, key, leaseToken, response)) ? response : inProgressResponse() };
  }
  await undoHolds(platform, claim.checkoutNo);
  const checkoutNo = freshCheckoutNo();
  if (!(await moveIdempotencyKey(shard, key, leaseToken, checkoutNo))) return { answer: inProgressResponse() };
  return { checkoutNo, leaseToken };
}

/**
 * A step failed. Every attempt has a checkout number of its own, so its compensations never touch
 * another attempt's holds; only the key's current holder may record the answer.
 *  - The lease was lost: another request took the key over (under a checkout number of its own),
 *    so this checkout number will never be placed and what it holds goes back.
 *  - A refusal (AppError): what is held goes back and the key records the answer; a temporary one
 *    (5xx), or one whose holds Redis could not take back yet, frees the key so a retry runs again
 *    (the verification job, already written, gives the holds back later).
 *  - Unexpected: undone (the failed step too, whose commit may have happened) only when the checkout
 *    is known not to exist and the key was still ours; if even that cannot be told, the
 *    verification job decides later.
 */
async function answerFailure(attempt: Attempt, failure: Extract<StepsOutcome, { failed: true }>): Promise<CheckoutResponse> {
  const { platform, checkoutNo, key, leaseToken } = attempt;
  const shard = platform.shards.forBuyer(attempt.buyerId);
  const compensate = async (compensations = failure.compensations) => {
    for (const compensation of compensations) await compensation(platform, checkoutNo);
  };
  const { error } = failure;
  if (error instanceof LeaseLost) {
    await compensate();
    return inProgressResponse();
  }
  if (!isAppError(error)) {
    const placed = await findCheckout(shard, checkoutNo).catch(() => 'unknown' as const);
    if (placed === undefined && (await abandonIdempotencyKey(shard, key, leaseToken).catch(() => false))) {
      await compensate([...(failure.ownCompensation ? [failure.ownCompensation] : []), ...failure.compensations]);
    }
    throw error;
  }
  const response = { status: error.status, body: error.toBody() };
  const undone = await compensate().then(
    () => true,
    (undoError: unknown) => {
      // Redis is out of reach: the verification job, already scheduled, gives the holds back later.
      if (!isAppError(undoError, 'flash_sale_not_ready')) throw undoError;
      return false;
    },
  );
  const recorded = error.status >= 500 || !undone ? await abandonIdempotencyKey(shard, key, leaseToken) : await completeIdempotencyKey(shard, key, leaseToken, response);
  return recorded ? response : inProgressResponse();
}

function inProgressResponse(): CheckoutResponse {
  const error = new AppError('idempotency_request_in_progress', { field: 'Idempotency-Key' });
  return { status: error.status, body: error.toBody() };
}

/**
 * The safety net for a checkout that died between reserving stock and writing its orders:
 * scheduled in the reservation's own transaction, it runs after the key's lease has run out.
 * If the checkout exists there is nothing to do; otherwise it takes the key from the dead holder
 * (so nobody resumes this checkout number), releases the reservation and frees the key.
 */
export async function verifyCheckoutReservation(platform: Platform, checkoutNo: string): Promise<'order_placed' | 'released'> {
  const shard = platform.shards.forOrderNo(checkoutNo);
  assert(shard, () => `reservation for a malformed checkout number ${checkoutNo}`);
  if (await findCheckout(shard, checkoutNo)) return 'order_placed';
  const now_ms = platform.now();
  const key = await seizeAbandonedKey(shard, checkoutNo, now_ms);
  if (key.found && key.seized === undefined && key.state === 'in_progress') {
    throw new Error(`checkout ${checkoutNo} still holds its key; checking again later`);
  }
  // The holder may have committed the checkout and completed the key a moment ago.
  if (await findCheckout(shard, checkoutNo)) return 'order_placed';
  await undoHolds(platform, checkoutNo);
  if (key.found && key.seized) await abandonIdempotencyKey(shard, key.seized, key.seized.leaseToken);
  return 'released';
}

async function completedResponse(platform: Platform, key: KeyRef, hash: string): Promise<CheckoutResponse | undefined> {
  const answer = await keyAnswer(platform.shards.forBuyer(key.buyerId), key);
  if (!answer || answer.hash !== hash) return undefined;
  // The first attempt is still running: its answer, not this one's, is the submission's answer.
  if (answer.inProgress) return inProgressResponse();
  return { status: answer.status, body: answer.body };
}
