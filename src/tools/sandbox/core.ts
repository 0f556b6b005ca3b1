import { randomBytes } from 'node:crypto';
import { chinaDate, type ChannelName } from '../../payments/channels/types.ts';
import { dayBill, type BillEdit, type BillRow } from './bills.ts';
import { NO_FAULTS, type Faults } from './faults.ts';
import { NotificationSender, type ChannelNotifier, type DeliveryAttempt, type OutgoingNotification } from './notifications.ts';
import { SandboxError, type SandboxCombined, type SandboxEvent, type SandboxRefund, type SandboxTrade } from './trades.ts';

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
  private readonly combinedPayments = new Map<string, SandboxCombined>();
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
    combineNo?: string;
    subMerchantId?: string;
  }): SandboxTrade {
    const existing = this.trade(input.channel, input.payNo);
    if (existing) {
      if (existing.amount_fen !== input.amount_fen) throw new SandboxError('trade_exists', 'the pay number was used with another amount');
      if (existing.combineNo !== input.combineNo || existing.subMerchantId !== input.subMerchantId) throw new SandboxError('trade_exists', 'the pay number was used for another merchant or payment');
      return existing;
    }
    if (this.trades.size >= MAX_SANDBOX_TRADES) this.forgetOldest();
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
      combineNo: input.combineNo,
      subMerchantId: input.subMerchantId,
    };
    this.trades.set(tradeKey(input.channel, input.payNo), trade);
    return trade;
  }

  /**
   * 合单: one combined payment over a trade per sub-order. A repeat with the same sub-orders
   * (numbers, amounts, merchants) returns the one made; anything else under a used number is refused,
   * as the channels refuse a changed order.
   */
  createCombined(input: {
    channel: ChannelName;
    combineNo: string;
    subOrders: readonly { payNo: string; amount_fen: number; subject: string; subMerchantId?: string | undefined }[];
    method: string;
    notifyUrl: string;
    returnUrl?: string;
    expires_at_ms: number;
    extra?: Record<string, string>;
  }): { combined: SandboxCombined; trades: SandboxTrade[] } {
    if (input.subOrders.length === 0) throw new SandboxError('sub_orders_differ', 'a combined payment needs at least one sub-order');
    const existing = this.combined(input.channel, input.combineNo);
    if (existing) {
      const trades = this.tradesOf(existing);
      const same =
        trades.length === input.subOrders.length &&
        input.subOrders.every((sub, index) => trades[index]!.payNo === sub.payNo && trades[index]!.amount_fen === sub.amount_fen && trades[index]!.subMerchantId === sub.subMerchantId);
      if (!same) throw new SandboxError('trade_exists', 'the combined number was used with other sub-orders');
      return { combined: existing, trades };
    }
    if (new Set(input.subOrders.map((sub) => sub.payNo)).size !== input.subOrders.length) throw new SandboxError('sub_orders_differ', 'a sub-order number appears twice');
    for (const sub of input.subOrders) {
      if (this.trade(input.channel, sub.payNo)) throw new SandboxError('trade_exists', `the sub-order number ${sub.payNo} is taken`);
    }
    const trades = input.subOrders.map((sub) =>
      this.createTrade({
        channel: input.channel,
        payNo: sub.payNo,
        amount_fen: sub.amount_fen,
        subject: sub.subject,
        method: input.method,
        notifyUrl: input.notifyUrl,
        ...(input.returnUrl !== undefined ? { returnUrl: input.returnUrl } : {}),
        expires_at_ms: input.expires_at_ms,
        ...(input.extra ? { extra: input.extra } : {}),
        combineNo: input.combineNo,
        ...(sub.subMerchantId !== undefined ? { subMerchantId: sub.subMerchantId } : {}),
      }),
    );
    const combined: SandboxCombined = {
      channel: input.channel,
      combineNo: input.combineNo,
      payNos: trades.map((trade) => trade.payNo),
      method: input.method,
      notifyUrl: input.notifyUrl,
      created_at_ms: this.now(),
      expires_at_ms: input.expires_at_ms,
      extra: { ...input.extra },
    };
    this.combinedPayments.set(tradeKey(input.channel, input.combineNo), combined);
    return { combined, trades };
  }

  combined(channel: ChannelName, combineNo: string): SandboxCombined | undefined {
    return this.combinedPayments.get(tradeKey(channel, combineNo));
  }

  /** A combined payment's sub-order trades, in the order they were sent (a forgotten one is left out). */
  tradesOf(combined: SandboxCombined): SandboxTrade[] {
    return combined.payNos.map((payNo) => this.trade(combined.channel, payNo)).filter((trade): trade is SandboxTrade => trade !== undefined);
  }

  private forgetOldest(): void {
    const oldest = this.trades.values().next().value!;
    this.trades.delete(tradeKey(oldest.channel, oldest.payNo));
    if (oldest.combineNo !== undefined) this.combinedPayments.delete(tradeKey(oldest.channel, oldest.combineNo));
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
    if (trade.combineNo !== undefined) throw new SandboxError('not_payable', `the trade is a sub-order of ${trade.combineNo}: the combined payment is paid as a whole`);
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

  /**
   * The buyer pays a combined payment: every sub-order succeeds at the same instant, or none does
   * (合单 has no partial success) — one closed or expired sub-order makes the whole not payable.
   */
  payCombined(channel: ChannelName, combineNo: string): SandboxTrade[] {
    const combined = this.combined(channel, combineNo);
    if (!combined) throw new SandboxError('trade_not_found', `no ${channel} combined payment ${combineNo}`);
    const trades = this.tradesOf(combined);
    if (trades.length !== combined.payNos.length) throw new SandboxError('not_payable', 'a sub-order is gone');
    const now_ms = this.now();
    if (trades.some((trade) => trade.state !== 'WAIT_BUYER_PAY') || now_ms > combined.expires_at_ms) {
      for (const trade of trades) {
        if (trade.state === 'WAIT_BUYER_PAY' && now_ms > trade.expires_at_ms) {
          trade.state = 'CLOSED';
          trade.closed_at_ms = now_ms;
        }
      }
      throw new SandboxError('not_payable', `the combined payment is ${trades.map((trade) => trade.state).join('/')}`);
    }
    for (const trade of trades) {
      trade.state = 'SUCCESS';
      trade.paid_at_ms = now_ms;
    }
    this.emit({ kind: 'combined_paid', trade: trades[0]!, combined, trades });
    return trades;
  }

  /**
   * Closes a combined payment as a whole. The list must name exactly its sub-orders (WeChat refuses
   * a close of three of ten); a paid one is reported. Channel-specific rules (WeChat's minute after
   * creation) are the channel module's.
   */
  closeCombined(channel: ChannelName, combineNo: string, payNos: readonly string[]): 'closed' | 'already_paid' | 'not_found' {
    const combined = this.combined(channel, combineNo);
    if (!combined) return 'not_found';
    if (payNos.length !== combined.payNos.length || [...payNos].sort().join() !== [...combined.payNos].sort().join()) {
      throw new SandboxError('sub_orders_differ', 'a combined payment is closed with exactly the sub-orders it was made with');
    }
    const trades = this.tradesOf(combined);
    if (trades.some((trade) => trade.state === 'SUCCESS' || trade.state === 'FINISHED' || trade.paid_at_ms !== undefined)) return 'already_paid';
    if (this.faults.keepPayableOnClose > 0) {
      this.faults.keepPayableOnClose--;
      return 'closed';
    }
    for (const trade of trades) this.closeTrade(trade);
    return 'closed';
  }

  close(channel: ChannelName, payNo: string): 'closed' | 'already_paid' | 'not_found' {
    const trade = this.trade(channel, payNo);
    if (!trade) return 'not_found';
    if (trade.combineNo !== undefined) throw new SandboxError('sub_orders_differ', `the trade is a sub-order of ${trade.combineNo}: close the combined payment`);
    if (trade.state === 'SUCCESS' || trade.state === 'FINISHED') return 'already_paid';
    if (trade.state === 'WAIT_BUYER_PAY' && this.faults.keepPayableOnClose > 0) {
      this.faults.keepPayableOnClose--;
      return 'closed';
    }
    this.closeTrade(trade);
    return 'closed';
  }

  private closeTrade(trade: SandboxTrade): void {
    if (trade.state !== 'WAIT_BUYER_PAY') return;
    trade.state = 'CLOSED';
    trade.closed_at_ms = this.now();
    this.emit({ kind: 'closed', trade });
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
