import type { ChannelName } from './channels/types.ts';

/**
 * 熔断: a channel whose create calls keep failing (no answer, a timeout, an answer that does not
 * verify: `channel_unavailable`) is taken out of the cashier; after a while it is probed with the
 * next payment started on it and brought back when that succeeds. A refusal is an answer, so it
 * counts as the channel working. Only starting payments is gated: open payments keep being
 * queried, closed and refunded on their channel whatever its state. Each API process keeps its
 * own view (a process that sees failures stops sending; one that does not, does not).
 */
export const BREAKER_STATES = ['closed', 'open', 'half_open'] as const;
export type BreakerState = (typeof BREAKER_STATES)[number];

/** Every move a breaker may make; any other is a bug. */
export const BREAKER_TRANSITIONS: Record<BreakerState, readonly BreakerState[]> = {
  // Failures past the threshold within the window.
  closed: ['open'],
  // The open time is over: the next start is the probe.
  open: ['half_open'],
  // The probe succeeded, or failed.
  half_open: ['closed', 'open'],
};

export interface BreakerSettings {
  /** This many failed create calls within window_ms take the channel out. */
  failures: number;
  window_ms: number;
  /** How long it stays out before the next start probes it. */
  open_ms: number;
}

export const DEFAULT_BREAKER_SETTINGS: BreakerSettings = { failures: 5, window_ms: 30_000, open_ms: 30_000 };

export interface ChannelHealth {
  channel: ChannelName;
  state: BreakerState;
  /** Whether the cashier offers it now (closed, or open long enough to be probed). */
  available: boolean;
  /** Why it was taken out: the last failure. */
  reason?: string;
  /** When it will be probed, while it is out. */
  probe_at_ms?: number;
}

interface Breaker {
  state: BreakerState;
  failures_ms: number[];
  opened_at_ms: number;
  reason: string | undefined;
}

export class ChannelBreakers {
  private readonly breakers = new Map<ChannelName, Breaker>();

  constructor(
    channels: Iterable<ChannelName>,
    readonly settings: BreakerSettings = DEFAULT_BREAKER_SETTINGS,
  ) {
    for (const channel of channels) this.breakers.set(channel, { state: 'closed', failures_ms: [], opened_at_ms: 0, reason: undefined });
  }

  health(channel: ChannelName, now_ms: number): ChannelHealth {
    const b = this.breaker(channel);
    if (b.state === 'open' && now_ms >= b.opened_at_ms + this.settings.open_ms) this.move(b, 'half_open');
    return {
      channel,
      state: b.state,
      available: b.state !== 'open',
      ...(b.state !== 'closed' && b.reason !== undefined && { reason: b.reason }),
      ...(b.state === 'open' && { probe_at_ms: b.opened_at_ms + this.settings.open_ms }),
    };
  }

  all(now_ms: number): ChannelHealth[] {
    return [...this.breakers.keys()].map((channel) => this.health(channel, now_ms));
  }

  /** The channel answered a create call (a trade or a refusal). */
  succeeded(channel: ChannelName): void {
    const b = this.breaker(channel);
    if (b.state === 'half_open') this.move(b, 'closed');
    b.failures_ms = [];
    b.reason = undefined;
  }

  /** A create call got no usable answer. */
  failed(channel: ChannelName, reason: string, now_ms: number): void {
    const b = this.breaker(channel);
    b.reason = reason.slice(0, 200);
    if (b.state === 'half_open') {
      this.open(b, now_ms);
      return;
    }
    if (b.state === 'open') return;
    b.failures_ms = [...b.failures_ms.filter((t) => t > now_ms - this.settings.window_ms), now_ms];
    if (b.failures_ms.length >= this.settings.failures) this.open(b, now_ms);
  }

  private open(b: Breaker, now_ms: number): void {
    this.move(b, 'open');
    b.opened_at_ms = now_ms;
    b.failures_ms = [];
  }

  private move(b: Breaker, to: BreakerState): void {
    if (!BREAKER_TRANSITIONS[b.state].includes(to)) throw new Error(`channel breaker: ${b.state} → ${to} is not a transition`);
    b.state = to;
  }

  private breaker(channel: ChannelName): Breaker {
    const b = this.breakers.get(channel);
    if (!b) throw new Error(`no breaker for channel ${channel}`);
    return b;
  }
}
