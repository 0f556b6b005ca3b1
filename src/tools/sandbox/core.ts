import { randomBytes } from 'node:crypto';
import { chinaDate, type ChannelName } from '../../payments/channels/types.ts';
import { dayBill, type BillEdit, type BillRow } from './bills.ts';

export type { BillEdit, BillRow } from './bills.ts';

/**
 * The channel-neutral heart of the sandbox: trades, refunds, the buyer's Pay click,
 * notifications sent on each channel's retry schedule, fault switches and bill rows.
 * Each channel module (sandbox/alipay.ts, …) speaks its protocol on top of this.
 * It lives in memory: the sandbox plays a remote party, and a restart is a new party.
 */

export type SandboxTradeState = 'WAIT_BUYER_PAY' | 'SUCCESS' | 'CLOSED' | 'FINISHED';
export type SandboxRefundState = 'PROCESSING' | 'SUCCESS' | 'FAILED';

export interface SandboxTrade {
  channel: ChannelName;
  /** The merchant's number for the trade (our pay number). */
  payNo: string;
  /** The channel's own trade number. */
  tradeNo: string;
  amount_fen: number;
  subject: string;
  method: string;
  notifyUrl: string;
  returnUrl: string | undefined;
  state: SandboxTradeState;
  created_at_ms: number;
  expires_at_ms: number;
  paid_at_ms: number | undefined;
  closed_at_ms: number | undefined;
  refunds: SandboxRefund[];
  /** Channel-specific facts the protocol module wants to keep (openid, queryId, …). */
  extra: Record<string, string>;
}

export interface SandboxRefund {
  refundNo: string;
  channelRefundNo: string;
  amount_fen: number;
  state: SandboxRefundState;
  reason: string;
  notifyUrl: string | undefined;
  created_at_ms: number;
  succeeded_at_ms: number | undefined;
}

/** What happened to a trade; a channel module decides whether and how it is notified. */
export type SandboxEvent =
  | { kind: 'paid'; trade: SandboxTrade }
  | { kind: 'refunded'; trade: SandboxTrade; refund: SandboxRefund }
  | { kind: 'closed'; trade: SandboxTrade }
  | { kind: 'finished'; trade: SandboxTrade };

export interface OutgoingNotification {
  url: string;
  headers: Record<string, string>;
  body: string;
}

export interface ChannelNotifier {
  /** The signed request for an event, or undefined when the channel sends none for it. misSign: spoil the signature. */
  build(event: SandboxEvent, options: { misSign: boolean }): OutgoingNotification | undefined;
  /** Whether the merchant's answer stops the retries (Alipay: exactly `success`; WeChat: 200/204; …). */
  acknowledged(answer: { status: number; body: string }): boolean;
  /** Delays before each retry after the first attempt, in real milliseconds before scaling. */
  retrySchedule_ms: readonly number[];
}

/** Fault switches. Counters are used up one notification (or refund) at a time. */
export interface Faults {
  /** The next N notifications are never sent (lost): only an active query finds them. */
  drop: number;
  /** Every notification waits this long before its first attempt. */
  delay_ms: number;
  /** The next N notifications are each delivered twice at the same moment. */
  duplicate: number;
  /** While on, notifications are held; turning it off sends the held ones newest first. */
  reorder: boolean;
  /** The next N delivery attempts carry a spoiled signature; the retry after each is signed properly. */
  misSign: number;
  /** The next N refunds fail at the channel. */
  failRefund: number;
  /**
   * The next N closes are answered 'closed' but leave the trade payable: the buyer was already
   * at the cashier, or the channel's close had not taken effect — how a re-issued payment
   * leaves the old one payable (重复支付).
   */
  keepPayableOnClose: number;
  /** Channels that are down: every call to their API is answered 503, unsigned (an outage). */
  down: ChannelName[];
}

export const NO_FAULTS: Faults = { drop: 0, delay_ms: 0, duplicate: 0, reorder: false, misSign: 0, failRefund: 0, keepPayableOnClose: 0, down: [] };

export class SandboxError extends Error {
  constructor(
    readonly code: 'trade_not_found' | 'trade_exists' | 'not_payable' | 'not_refundable' | 'refund_exceeds' | 'refund_failed',
    message: string,
  ) {
    super(message);
    this.name = 'SandboxError';
  }
}

/** Most trades the sandbox keeps; the oldest go first. */
export const MAX_SANDBOX_TRADES = 200_000;
/** Most notifications waiting to be delivered at once. */
export const MAX_PENDING_NOTIFICATIONS = 100_000;
const DELIVERY_TIMEOUT_MS = 10_000;

export interface SandboxCoreOptions {
  now?: () => number;
  /** Multiplies every retry delay: 1 is the channels' real schedule, 0.001 turns hours into seconds for tests. */
  retryScale?: number;
  log?: (message: string, fields?: Record<string, unknown>) => void;
}

export class SandboxCore {
  readonly now: () => number;
  readonly retryScale: number;
  faults: Faults = { ...NO_FAULTS };
  private readonly trades = new Map<string, SandboxTrade>();
  private readonly notifiers = new Map<ChannelName, ChannelNotifier>();
  private readonly held: Array<() => void> = [];
  private readonly inFlight = new Set<Promise<void>>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly billEdits: BillEdit[] = [];
  private readonly log: (message: string, fields?: Record<string, unknown>) => void;
  private stopped = false;
  /** Every delivery attempt, for tests and the operator: what was sent and what came back. */
  readonly deliveries: Array<{ channel: ChannelName; url: string; status: number; acknowledged: boolean; misSigned: boolean; at_ms: number }> = [];

  constructor(options: SandboxCoreOptions = {}) {
    this.now = options.now ?? Date.now;
    this.retryScale = options.retryScale ?? 1;
    this.log = options.log ?? (() => {});
  }

  registerNotifier(channel: ChannelName, notifier: ChannelNotifier): void {
    this.notifiers.set(channel, notifier);
  }

  /** A channel's own trade number: date, then random digits, as the channels do. */
  newChannelNo(prefix = ''): string {
    const day = chinaDate(this.now()).replaceAll('-', '');
    return `${prefix}${day}${BigInt('0x' + randomBytes(8).toString('hex')).toString().padStart(20, '0').slice(0, 20)}`;
  }

  /**
   * Creates a trade, or returns the one already made under this pay number when the request
   * is the same (channels treat a repeat as the same trade, and refuse a changed one).
   */
  createTrade(input: {
    channel: ChannelName;
    payNo: string;
    amount_fen: number;
    subject: string;
    method: string;
    notifyUrl: string;
    returnUrl?: string;
    expires_at_ms: number;
    extra?: Record<string, string>;
  }): SandboxTrade {
    const existing = this.trade(input.channel, input.payNo);
    if (existing) {
      if (existing.amount_fen !== input.amount_fen) throw new SandboxError('trade_exists', 'the pay number was used with another amount');
      return existing;
    }
    if (this.trades.size >= MAX_SANDBOX_TRADES) this.trades.delete(this.trades.keys().next().value!);
    const trade: SandboxTrade = {
      channel: input.channel,
      payNo: input.payNo,
      tradeNo: this.newChannelNo(),
      amount_fen: input.amount_fen,
      subject: input.subject,
      method: input.method,
      notifyUrl: input.notifyUrl,
      returnUrl: input.returnUrl,
      state: 'WAIT_BUYER_PAY',
      created_at_ms: this.now(),
      expires_at_ms: input.expires_at_ms,
      paid_at_ms: undefined,
      closed_at_ms: undefined,
      refunds: [],
      extra: { ...input.extra },
    };
    this.trades.set(key(input.channel, input.payNo), trade);
    return trade;
  }

  trade(channel: ChannelName, payNo: string): SandboxTrade | undefined {
    return this.trades.get(key(channel, payNo));
  }

  tradeByChannelNo(channel: ChannelName, tradeNo: string): SandboxTrade | undefined {
    for (const t of this.trades.values()) if (t.channel === channel && t.tradeNo === tradeNo) return t;
    return undefined;
  }

  listTrades(channel?: ChannelName): SandboxTrade[] {
    return [...this.trades.values()].filter((t) => !channel || t.channel === channel);
  }

  private mustFind(channel: ChannelName, payNo: string): SandboxTrade {
    const trade = this.trade(channel, payNo);
    if (!trade) throw new SandboxError('trade_not_found', `no ${channel} trade ${payNo}`);
    return trade;
  }

  /** The buyer clicks Pay on the cashier page. A trade past its expiry closes instead. */
  pay(channel: ChannelName, payNo: string): SandboxTrade {
    const trade = this.mustFind(channel, payNo);
    if (trade.state === 'WAIT_BUYER_PAY' && this.now() > trade.expires_at_ms) {
      trade.state = 'CLOSED';
      trade.closed_at_ms = this.now();
    }
    if (trade.state !== 'WAIT_BUYER_PAY') throw new SandboxError('not_payable', `the trade is ${trade.state}`);
    trade.state = 'SUCCESS';
    trade.paid_at_ms = this.now();
    this.emit({ kind: 'paid', trade });
    return trade;
  }

  close(channel: ChannelName, payNo: string): 'closed' | 'already_paid' | 'not_found' {
    const trade = this.trade(channel, payNo);
    if (!trade) return 'not_found';
    if (trade.state === 'SUCCESS' || trade.state === 'FINISHED') return 'already_paid';
    if (trade.state === 'WAIT_BUYER_PAY' && this.faults.keepPayableOnClose > 0) {
      this.faults.keepPayableOnClose--;
      return 'closed';
    }
    if (trade.state === 'WAIT_BUYER_PAY') {
      trade.state = 'CLOSED';
      trade.closed_at_ms = this.now();
      this.emit({ kind: 'closed', trade });
    }
    return 'closed';
  }

  /** The trade can no longer be refunded (Alipay TRADE_FINISHED). */
  finish(channel: ChannelName, payNo: string): SandboxTrade {
    const trade = this.mustFind(channel, payNo);
    if (trade.state !== 'SUCCESS') throw new SandboxError('not_refundable', `the trade is ${trade.state}`);
    trade.state = 'FINISHED';
    this.emit({ kind: 'finished', trade });
    return trade;
  }

  refunded_fen(trade: SandboxTrade): number {
    return trade.refunds.filter((r) => r.state !== 'FAILED').reduce((sum, r) => sum + r.amount_fen, 0);
  }

  /**
   * Idempotent by refund number. A refund succeeds at once (its notification still goes out
   * asynchronously) unless the failRefund switch is on.
   */
  refund(channel: ChannelName, payNo: string, input: { refundNo: string; amount_fen: number; reason?: string; notifyUrl?: string }): SandboxRefund {
    const trade = this.mustFind(channel, payNo);
    const existing = trade.refunds.find((r) => r.refundNo === input.refundNo);
    if (existing) return existing;
    if (trade.state !== 'SUCCESS' && !(trade.state === 'CLOSED' && trade.paid_at_ms !== undefined)) {
      throw new SandboxError('not_refundable', `the trade is ${trade.state}`);
    }
    if (input.amount_fen <= 0 || this.refunded_fen(trade) + input.amount_fen > trade.amount_fen) {
      throw new SandboxError('refund_exceeds', 'the refund exceeds what is left of the trade');
    }
    const refund: SandboxRefund = {
      refundNo: input.refundNo,
      channelRefundNo: this.newChannelNo('5'),
      amount_fen: input.amount_fen,
      state: 'PROCESSING',
      reason: input.reason ?? '',
      notifyUrl: input.notifyUrl ?? trade.notifyUrl,
      created_at_ms: this.now(),
      succeeded_at_ms: undefined,
    };
    trade.refunds.push(refund);
    if (this.faults.failRefund > 0) {
      this.faults.failRefund--;
      refund.state = 'FAILED';
      return refund;
    }
    refund.state = 'SUCCESS';
    refund.succeeded_at_ms = this.now();
    // A full refund closes an Alipay-style trade; channel modules read the trade's refunds.
    if (this.refunded_fen(trade) === trade.amount_fen) {
      trade.state = 'CLOSED';
      trade.closed_at_ms = this.now();
    }
    this.emit({ kind: 'refunded', trade, refund });
    return refund;
  }

  findRefund(channel: ChannelName, refundNo: string): { trade: SandboxTrade; refund: SandboxRefund } | undefined {
    for (const trade of this.trades.values()) {
      if (trade.channel !== channel) continue;
      const refund = trade.refunds.find((r) => r.refundNo === refundNo);
      if (refund) return { trade, refund };
    }
    return undefined;
  }

  setFaults(change: Partial<Faults>): Faults {
    const releasing = this.faults.reorder && change.reorder === false;
    this.faults = { ...this.faults, ...change };
    if (releasing) this.releaseHeld();
    return this.faults;
  }

  /** Sends the notifications held by the reorder switch, newest first. */
  releaseHeld(): void {
    const held = this.held.splice(0).reverse();
    for (const send of held) send();
  }

  /** Re-sends the notification of an event, as a channel does when asked to (and as tests do). */
  renotify(event: SandboxEvent): void {
    this.emit(event);
  }

  /** The signed notification the channel would send for an event now (tests replay and forge with it). */
  notificationFor(event: SandboxEvent, options: { misSign: boolean } = { misSign: false }): OutgoingNotification | undefined {
    return this.notifiers.get(event.trade.channel)?.build(event, options);
  }

  /** Waits until every notification is delivered, acknowledged or out of retries. */
  async settled(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  private emit(event: SandboxEvent): void {
    const notifier = this.notifiers.get(event.trade.channel);
    if (!notifier || this.stopped) return;
    if (!notifier.build(event, { misSign: false })) return;
    if (this.faults.drop > 0) {
      this.faults.drop--;
      this.log('notification dropped (fault)', { channel: event.trade.channel, payNo: event.trade.payNo, kind: event.kind });
      return;
    }
    const copies = this.faults.duplicate > 0 ? (this.faults.duplicate--, 2) : 1;
    const start = () => {
      for (let i = 0; i < copies; i++) this.track(this.deliver(event, notifier));
    };
    if (this.faults.reorder) this.held.push(start);
    else start();
  }

  private track(delivery: Promise<void>): void {
    if (this.inFlight.size >= MAX_PENDING_NOTIFICATIONS) {
      this.log('notification queue full; notification dropped');
      return;
    }
    this.inFlight.add(delivery);
    void delivery.finally(() => this.inFlight.delete(delivery));
  }

  private async deliver(event: SandboxEvent, notifier: ChannelNotifier): Promise<void> {
    if (this.faults.delay_ms > 0) await this.sleep(this.faults.delay_ms);
    for (let attempt = 0; attempt <= notifier.retrySchedule_ms.length && !this.stopped; attempt++) {
      if (attempt > 0) await this.sleep(notifier.retrySchedule_ms[attempt - 1]! * this.retryScale);
      if (this.stopped) return;
      const misSign = this.faults.misSign > 0 ? (this.faults.misSign--, true) : false;
      const request = notifier.build(event, { misSign })!;
      let answer = { status: 0, body: '' };
      try {
        const response = await fetch(request.url, {
          method: 'POST',
          headers: request.headers,
          body: request.body,
          signal: AbortSignal.timeout(DELIVERY_TIMEOUT_MS),
        });
        answer = { status: response.status, body: await response.text() };
      } catch (error) {
        this.log('notification delivery failed', { url: request.url, error: String(error) });
      }
      const acknowledged = notifier.acknowledged(answer);
      this.deliveries.push({ channel: event.trade.channel, url: request.url, status: answer.status, acknowledged, misSigned: misSign, at_ms: this.now() });
      if (this.deliveries.length > MAX_PENDING_NOTIFICATIONS) this.deliveries.splice(0, this.deliveries.length - MAX_PENDING_NOTIFICATIONS);
      if (acknowledged) return;
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        resolve();
      }, Math.max(0, Math.round(ms)));
      timer.unref?.();
      this.timers.add(timer);
    });
  }

  editBill(edit: BillEdit): void {
    this.billEdits.push(edit);
  }

  /** One day's bill (China date): payments completed and refunds succeeded that day, with any edits applied. */
  billRows(channel: ChannelName, date: string): BillRow[] {
    return dayBill(this.trades.values(), this.billEdits, channel, date);
  }
}

function key(channel: ChannelName, payNo: string): string {
  return `${channel}:${payNo}`;
}
