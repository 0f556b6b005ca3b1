import { describe, expect, it } from 'vitest';
import { EventBus, MAX_CONSUMERS } from '../src/events/relay.ts';
import type { Db } from '../src/platform/db/database.ts';
import { MAX_TRANSACTION_ATTEMPTS, withTransientRetry } from '../src/platform/db/retry.ts';
import { MAX_TOKEN_TTL_S, signToken, verifyToken } from '../src/platform/http/tokens.ts';
import { TEST_TOKEN_SECRET } from './support/harness.ts';

/** Named limits of plain code, at the limit and one past it, by name. */
describe('limits of plain code', () => {
  it('the bus takes MAX_CONSUMERS consumers and refuses one more', () => {
    const bus = new EventBus({} as Db);
    for (let i = 0; i < MAX_CONSUMERS; i++) bus.subscribe('test.event', `test.consumer.${i}`, async () => undefined);
    expect(bus.consumers()).toHaveLength(MAX_CONSUMERS);
    expect(() => bus.subscribe('test.event', 'test.consumer.one-more', async () => undefined)).toThrow(/more than/);
    expect(bus.consumers()).toHaveLength(MAX_CONSUMERS);
  });

  it('a transaction colliding MAX_TRANSACTION_ATTEMPTS - 1 times still commits; colliding MAX_TRANSACTION_ATTEMPTS times fails', async () => {
    const collidingTimes = (times: number) => {
      let calls = 0;
      const work = async () => {
        calls += 1;
        if (calls <= times) throw Object.assign(new Error('could not serialize access'), { code: '40001' });
        return 'committed';
      };
      return { work, calls: () => calls };
    };
    const lastChance = collidingTimes(MAX_TRANSACTION_ATTEMPTS - 1);
    expect(await withTransientRetry(lastChance.work)).toBe('committed');
    expect(lastChance.calls()).toBe(MAX_TRANSACTION_ATTEMPTS);
    const exhausted = collidingTimes(MAX_TRANSACTION_ATTEMPTS);
    await expect(withTransientRetry(exhausted.work)).rejects.toMatchObject({ code: '40001' });
    expect(exhausted.calls()).toBe(MAX_TRANSACTION_ATTEMPTS);
  });

  it('a token lives at most MAX_TOKEN_TTL_S seconds: one that long is signed and valid to its end, one second more is refused', () => {
    const now = Math.floor(Date.now() / 1000) * 1000; // tokens count in whole seconds
    const token = signToken(TEST_TOKEN_SECRET, { role: 'buyer', subject: '1' }, now, MAX_TOKEN_TTL_S);
    expect(verifyToken(TEST_TOKEN_SECRET, token, now + MAX_TOKEN_TTL_S * 1000 - 1)).toMatchObject({ role: 'buyer', subject: '1', expires_at_ms: now + MAX_TOKEN_TTL_S * 1000 });
    expect(() => signToken(TEST_TOKEN_SECRET, { role: 'buyer', subject: '1' }, now, MAX_TOKEN_TTL_S + 1)).toThrow();
  });
});
