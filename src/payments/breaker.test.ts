import { describe, expect, it } from 'vitest';
import { BREAKER_STATES, BREAKER_TRANSITIONS, ChannelBreakers } from './breaker.ts';

describe('channel breakers (熔断)', () => {
  const settings = { failures: 3, window_ms: 10_000, open_ms: 5_000 };

  it('opens at the threshold within the window, not below it nor with failures spread wider', () => {
    const b = new ChannelBreakers(['wechat'], settings);
    b.failed('wechat', 'no answer', 0);
    b.failed('wechat', 'no answer', 1_000);
    expect(b.health('wechat', 1_000)).toMatchObject({ state: 'closed', available: true });
    b.failed('wechat', 'no answer', 2_000);
    expect(b.health('wechat', 2_000)).toEqual({ channel: 'wechat', state: 'open', available: false, reason: 'no answer', probe_at_ms: 7_000 });

    const spread = new ChannelBreakers(['wechat'], settings);
    for (const at of [0, 6_000, 12_000]) spread.failed('wechat', 'no answer', at);
    expect(spread.health('wechat', 12_000).state).toBe('closed');
  });

  it('an answer clears the count; a refusal is an answer', () => {
    const b = new ChannelBreakers(['alipay'], settings);
    b.failed('alipay', 'timeout', 0);
    b.failed('alipay', 'timeout', 1);
    b.succeeded('alipay');
    b.failed('alipay', 'timeout', 2);
    b.failed('alipay', 'timeout', 3);
    expect(b.health('alipay', 3).state).toBe('closed');
  });

  it('is probed after open_ms: a failed probe opens it again, a good one closes it', () => {
    const b = new ChannelBreakers(['ccb'], settings);
    for (const at of [0, 1, 2]) b.failed('ccb', 'down', at);
    expect(b.health('ccb', 5_001).available).toBe(false);
    expect(b.health('ccb', 5_002)).toMatchObject({ state: 'half_open', available: true });
    b.failed('ccb', 'still down', 5_003);
    expect(b.health('ccb', 5_003)).toMatchObject({ state: 'open', reason: 'still down', probe_at_ms: 10_003 });
    expect(b.health('ccb', 10_003).state).toBe('half_open');
    b.succeeded('ccb');
    expect(b.health('ccb', 10_004)).toEqual({ channel: 'ccb', state: 'closed', available: true });
  });

  it('every state is in the transition table and reachable', () => {
    const targets = new Set(Object.values(BREAKER_TRANSITIONS).flat());
    for (const state of BREAKER_STATES) {
      expect(BREAKER_TRANSITIONS[state]).toBeDefined();
      expect(targets.has(state)).toBe(true);
    }
  });
});
