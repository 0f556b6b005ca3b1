import { randomBytes } from 'node:crypto';
import { chinaDate, type ChannelName } from '../../payments/channels/types.ts';
import { dayBill, type BillEdit, type BillRow } from './bills.ts';
import { NO_FAULTS, type Faults } from './faults.ts';
import { NotificationSender, type ChannelNotifier, type DeliveryAttempt, type OutgoingNotification } from './notifications.ts';
import { SandboxError, type SandboxEvent, type SandboxRefund, type SandboxTrade } from './trades.ts';

/**
 * The channel-neutral heart of the sandbox: trades, refunds, the buyer's Pay click, fault
 * switches and bill rows; notifications go out through the NotificationSender. Each channel
 * module (tools/sandbox/alipay.ts, …) speaks its protocol on top of this. It lives in memory:
 * the sandbox plays a remote party, and a restart is a new party.
 */

/** Most trades the sandbox keeps; the oldest go first. */
export const MAX_SANDBOX_TRADES = 200_000;

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
  private readonly billEdits: BillEdit[] = [];
  private readonly sender: NotificationSender;
  /** Every delivery attempt, for tests and the operator: what was sent and what came back. */
  readonly deliveries: readonly DeliveryAttempt[];

  constructor(options: SandboxCoreOptions = {}) {
    this.now = options.now ?? Date.now;
    this.retryScale = options.retryScale ?? 1;
    this.sender = new NotificationSender({ now: this.now, retryScale: this.retryScale, log: options.log ?? (() => {}), faults: () => this.faults });
    this.deliveries = this.sender.deliveries;
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
    this.trades.set(tradeKey(input.channel, input.payNo), trade);
    return trade;
  }

  trade(channel: ChannelName, payNo: string): SandboxTrade | undefined {
    return this.trades.get(tradeKey(channel, payNo));
  }

  tradeByChannelNo(channel: ChannelName, tradeNo: string): SandboxTrade | undefined {
    for (const trade of this.trades.values()) if (trade.channel === channel && trade.tradeNo === tradeNo) return trade;
    return undefined;
  }

  listTrades(channel?: ChannelName): SandboxTrade[] {
    return [...this.trades.values()].filter((trade) => !channel || trade.channel === channel);
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
    return trade.refunds.filter((refund) => refund.state !== 'FAILED').reduce((sum, refund) => sum + refund.amount_fen, 0);
  }

  /**
   * Idempotent by refund number. A refund succeeds at once (its notification still goes out
   * asynchronously) unless the failRefund switch is on.
   */
  refund(channel: ChannelName, payNo: string, input: { refundNo: string; amount_fen: number; reason?: string; notifyUrl?: string }): SandboxRefund {
    const trade = this.mustFind(channel, payNo);
    const existing = trade.refunds.find((refund) => refund.refundNo === input.refundNo);
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
      const refund = trade.refunds.find((candidate) => candidate.refundNo === refundNo);
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
    this.sender.releaseHeld();
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
  untilDelivered(): Promise<void> {
    return this.sender.untilDelivered();
  }

  stop(): void {
    this.sender.stop();
  }

  private emit(event: SandboxEvent): void {
    const notifier = this.notifiers.get(event.trade.channel);
    if (notifier) this.sender.send(event, notifier);
  }

  editBill(edit: BillEdit): void {
    this.billEdits.push(edit);
  }

  /** One day's bill (China date): payments completed and refunds succeeded that day, with any edits applied. */
  billRows(channel: ChannelName, date: string): BillRow[] {
    return dayBill(this.trades.values(), this.billEdits, channel, date);
  }
}

function tradeKey(channel: ChannelName, payNo: string): string {
  return `${channel}:${payNo}`;
}
