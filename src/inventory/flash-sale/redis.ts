import { createHash, randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import type { Redis } from 'ioredis';

/** ioredis is loaded when a flash sale is opened (REDIS_URL set), not by every process. */
const requireLazily = createRequire(import.meta.url);
import type { Logger } from 'pino';
import { AppError } from '../../platform/errors.ts';
import { UNLOCK } from './scripts.ts';

/**
 * A Redis command that has not answered after this long fails, so a checkout never hangs on Redis.
 * Only Redis's silence counts, not this process's own lag: see answeredInTime.
 */
export const REDIS_COMMAND_TIMEOUT_MS = 2_000;
/** Reconnection backoff grows by this much per attempt, up to the cap. */
const RECONNECT_STEP_MS = 50;
const RECONNECT_CAP_MS = 1_000;
/** One activity is loaded, unloaded or reconciled by one process at a time, for at most this long. */
export const ACTIVITY_LOCK_MS = 15_000;
export const DEFAULT_REDIS_KEY_PREFIX = 'tg:';

/** The Redis side of 秒杀: a connection, the key prefix, and where to say what happened. */
export interface FlashSale {
  redis: Redis;
  keyPrefix: string;
  log: Logger;
}

export function openFlashSale(url: string, keyPrefix: string | undefined, log: Logger): FlashSale {
  const { Redis: RedisClient } = requireLazily('ioredis') as typeof import('ioredis');
  const redis: Redis = new RedisClient(url, {
    // No commandTimeout here: ioredis's fires while the answer waits unread (answeredInTime).
    // A command caught by a dropped connection is tried again once after reconnecting; every
    // script is idempotent by order number (or token), so running twice answers the same.
    maxRetriesPerRequest: 1,
    retryStrategy: (attempt) => Math.min(attempt * RECONNECT_STEP_MS, RECONNECT_CAP_MS),
  });
  let lastWarning_ms = 0;
  redis.on('error', (error) => {
    // Reconnection retries on its own; one warning a second is plenty.
    if (Date.now() - lastWarning_ms < 1_000) return;
    lastWarning_ms = Date.now();
    log.warn({ err: error }, 'flash sale: Redis connection trouble');
  });
  return { redis, keyPrefix: keyPrefix ?? DEFAULT_REDIS_KEY_PREFIX, log };
}

export async function closeFlashSale(flashSale: FlashSale): Promise<void> {
  await flashSale.redis.quit().catch(() => flashSale.redis.disconnect());
}

/** The keys of one activity. The hash tag {fs:ID} keeps them on one cluster slot, so one script can touch them all. */
export function keysOf(flashSale: FlashSale, activityId: number) {
  const tag = `${flashSale.keyPrefix}{fs:${activityId}}`;
  return {
    avail: `${tag}:avail`,
    bought: `${tag}:bought`,
    orders: `${tag}:orders`,
    loaded: `${tag}:loaded`,
    seq: `${tag}:seq`,
    lock: `${tag}:lock`,
  };
}

/** The field of the orders hash that says an order's sold units of a SKU were given back (RETURN). */
export function returnMarkerOf(orderNo: string, activitySkuId: number): string {
  return `${orderNo}:${activitySkuId}`;
}

const shaOf = new Map<string, string>();

/**
 * Runs a script by its hash, sending the source only when Redis does not know it (after a
 * restart). A Redis failure becomes the retryable `flash_sale_not_ready`; the database's
 * errors never pass through here.
 */
export async function runScript(flashSale: FlashSale, script: string, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown> {
  let sha = shaOf.get(script);
  if (!sha) {
    sha = createHash('sha1').update(script).digest('hex');
    shaOf.set(script, sha);
  }
  try {
    try {
      return await answeredInTime(flashSale.redis.evalsha(sha, keys.length, ...keys, ...args));
    } catch (error) {
      if (!String((error as Error)?.message).startsWith('NOSCRIPT')) throw error;
      return await answeredInTime(flashSale.redis.eval(script, keys.length, ...keys, ...args));
    }
  } catch (error) {
    throw unreachable(error);
  }
}

/** Any other Redis command, with its failure made the retryable `flash_sale_not_ready`. */
export async function redisCall<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await answeredInTime(work());
  } catch (error) {
    throw unreachable(error);
  }
}

/**
 * The command's answer, or a timeout once Redis has been silent for REDIS_COMMAND_TIMEOUT_MS.
 * A plain timer is not that: each turn of the event loop runs due timers before it reads the
 * sockets, so when this process is busy (two thousand checkouts at once, a loaded machine) the
 * timer fires while Redis's answer — sent long ago — waits unread, and a buyer would be told
 * "Redis is out of reach" (and lose the unit Redis had just granted) because of our own lag.
 * So the timer only arms the timeout; it fires after the next I/O poll (setImmediate runs
 * after it), which reads whatever answer has arrived. A Redis that is really silent still fails
 * the command a moment after the deadline.
 */
function answeredInTime<T>(command: Promise<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let finished = false;
    const finishOnce = (finish: () => void) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      finish();
    };
    const timer = setTimeout(() => {
      setImmediate(() => finishOnce(() => reject(new Error(`Redis did not answer within ${REDIS_COMMAND_TIMEOUT_MS} ms`))));
    }, REDIS_COMMAND_TIMEOUT_MS);
    command.then(
      (value) => finishOnce(() => resolve(value)),
      (error: unknown) => finishOnce(() => reject(error)),
    );
  });
}

function unreachable(error: unknown): AppError {
  const wrapped = new AppError('flash_sale_not_ready', { details: { reason: 'redis' } });
  (wrapped as Error).cause = error;
  return wrapped;
}

/**
 * Runs `work` holding the activity's lock, or answers 'busy' when someone else holds it.
 * The lock has a lease, so a holder that died frees it by itself; every script a holder runs
 * checks the token, so a holder that outlived its lease changes nothing.
 */
export async function withActivityLock<T>(flashSale: FlashSale, activityId: number, work: (token: string) => Promise<T>): Promise<T | 'busy'> {
  const { lock } = keysOf(flashSale, activityId);
  const token = randomUUID();
  const taken = await redisCall(() => flashSale.redis.set(lock, token, 'PX', ACTIVITY_LOCK_MS, 'NX'));
  if (taken !== 'OK') return 'busy';
  try {
    return await work(token);
  } finally {
    await runScript(flashSale, UNLOCK, [lock], [token]).catch(() => undefined);
  }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
