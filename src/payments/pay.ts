import { scheduleJob } from '../jobs/index.ts';
import { channelsPayingAll, merchantsWithoutAccount } from '../catalog/index.ts';
import { getCheckout, getOrder } from '../orders/index.ts';
import { transaction } from '../platform/db/retry.ts';
import { isUniqueViolation } from '../platform/db/sql.ts';
import { AppError, isAppError } from '../platform/errors.ts';
import { slotOfOrderNo } from '../platform/shards.ts';
import { notifyUrl, PAYMENT_QUERY_JOB, type PaymentCentre } from './centre.ts';
import type { ChannelName, CombinedSubOrder, PaymentChannel, PayMethod } from './channels/types.ts';
import { applyToOrder, applyTradeResult } from './results.ts';
import { PAID_STATUSES } from './state.ts';
import { findPayment, mustShard, paymentsByNumber, paymentsOfCombine, paymentsOfOrder, paymentsOfOrders, sentAt, updatePayment, type Payment } from './store.ts';

export { PAYMENT_QUERY_JOB };
/** A buyer takes some seconds to scan and pay, and the notification usually follows at once: the first query waits for both. */
export const PAYMENT_QUERY_BACKOFF_MS = [15_000, 15_000, 30_000, 60_000, 120_000, 300_000] as const;
/** After the order's payment time is up, the channel gets this long before we close the trade there. */
export const CLOSE_GRACE_MS = 60_000;
/** Most payment attempts one order may have (channel switches, new QR codes). */
export const MAX_PAYMENT_ATTEMPTS = 20;
/** Racing starts for one checkout are decided again at most this many times. */
const MAX_START_ROUNDS = 5;
const MAX_SUBJECT_LENGTH = 120;

export interface StartPayment {
  /** The checkout to pay; or an order of it (paying an order pays its checkout: before payment a checkout moves as one). */
  checkoutNo?: string;
  orderNo?: string;
  channel: ChannelName;
  method: PayMethod;
  /** The buyer starting it; someone else's checkout is not found. */
  asBuyer?: number;
  payerId?: string;
  payerIp?: string;
  returnUrl?: string;
}

/**
 * One payment attempt of a checkout: a single trade when one order has something to pay, else a
 * combined payment (合单) of one sub-payment per such order. `payNo` is what the cashier pays: the
 * trade's number, or the combined number.
 */
export interface PaymentAttempt {
  payNo: string;
  combineNo: string | null;
  checkoutNo: string;
  channel: ChannelName;
  method: PayMethod;
  status: Payment['status'];
  amount_fen: number;
  currency: string;
  action: Payment['action'];
  expires_at_ms: number;
  created_at_ms: number;
  parts: Payment[];
}

function attemptOf(checkoutNo: string, parts: Payment[]): PaymentAttempt {
  const first = parts[0]!;
  return {
    payNo: first.combineNo ?? first.payNo,
    combineNo: first.combineNo,
    checkoutNo,
    channel: first.channel,
    method: first.method,
    status: first.status,
    amount_fen: parts.reduce((sum, part) => sum + part.amount_fen, 0),
    currency: first.currency,
    action: first.action,
    expires_at_ms: first.expires_at_ms,
    created_at_ms: first.created_at_ms,
    parts,
  };
}

/**
 * Starts paying a checkout: one attempt, expiring with it, over every order with something to pay
 * (a single trade, or one sub-payment per order in a combined payment), each order's money for its
 * own merchant at the channel (二清: never the platform's). The same channel and method again
 * returns the open attempt (a second tap shows the same QR code); another channel or method first
 * closes the open attempt at its channel, so the buyer can never pay two open trades — and if the
 * old one turns out paid, its orders are paid by it.
 */
export async function startPayment(centre: PaymentCentre, request: StartPayment): Promise<PaymentAttempt> {
  const { platform } = centre;
  const channel = centre.channels.get(request.channel);
  if (!channel) throw new AppError('channel_not_configured', { field: 'channel', details: { configured: [...centre.channels.keys()] } });
  if (!channel.methods.includes(request.method)) throw new AppError('pay_method_not_supported', { field: 'method', details: { methods: channel.methods } });
  const health = centre.breakers.health(request.channel, platform.now());
  if (!health.available) {
    const others = centre.breakers.all(platform.now()).filter((h) => h.available && h.channel !== request.channel).map((h) => h.channel);
    throw new AppError('channel_down', {
      field: 'channel',
      message: `${request.channel} keeps failing and is out of the cashier for now${others.length ? `; pay with ${others.join(' or ')}` : ''}.`,
      details: { channel: request.channel, reason: health.reason, probeAt: new Date(health.probe_at_ms!).toISOString(), available: others },
    });
  }
  const checkoutNo = request.checkoutNo ?? (await getOrder(platform, request.orderNo!, request.asBuyer)).checkoutNo;
  let checkout = await getCheckout(platform, checkoutNo, request.asBuyer);
  const db = platform.shards.forOrderNo(checkoutNo)!;
  // A payment of 0 fen is no payment (the payments table refuses one): such a checkout is paid at checkout.
  if (checkout.payable_fen === 0) throw new AppError('nothing_payable', { details: { status: checkout.orders[0]!.status } });

  for (let round = 0; round < MAX_START_ROUNDS; round++) {
    if (round > 0) checkout = await getCheckout(platform, checkoutNo);
    const waiting = checkout.orders.find((o) => o.status !== 'PENDING_PAYMENT');
    if (waiting || platform.now() >= checkout.expires_at_ms) notPayable(waiting?.status ?? 'PENDING_PAYMENT');
    // Orders with nothing to pay are paid with the others, and are no sub-order (channels refuse 0).
    const payable = checkout.orders.filter((o) => o.payable_fen > 0);
    const attempts = await paymentsOfOrders(db, payable.map((o) => o.orderNo));
    if (attempts.some((a) => PAID_STATUSES.includes(a.status))) notPayable('PAID');
    const open = groupsOf(attempts.filter((a) => a.status === 'CREATED'));
    const only = open.length === 1 ? open[0]! : undefined;
    if (only && only[0]!.channel === request.channel && only[0]!.method === request.method && only.every((a) => a.action) && coversExactly(only, payable)) {
      return attemptOf(checkoutNo, only);
    }
    if (open.length > 0) {
      for (const group of open) {
        if ((await closeGroup(centre, group)) === 'too_early') throw tooEarlyToSwitch(group[0]!);
      }
      continue;
    }
    const most = Math.max(...payable.map((o) => attempts.filter((a) => a.orderNo === o.orderNo).length));
    if (most >= MAX_PAYMENT_ATTEMPTS) throw new AppError('order_not_payable', { message: 'This order has had too many payment attempts.' });
    const payees = await payeesFor(centre, request.channel, payable);
    if (payable.length > 1) combinedPayable(channel, request.method, payable.length);

    const now_ms = platform.now();
    const slot = slotOfOrderNo(checkoutNo)!;
    const combineNo = payable.length > 1 ? `M${platform.nextOrderNo(slot, now_ms)}` : null;
    const parts = payable.map((order) => ({ order, payNo: `P${platform.nextOrderNo(slot, now_ms)}`, subMerchantId: payees.get(order.merchantId) }));
    try {
      await transaction(db, async (trx) => {
        await trx
          .insertInto('payment_orders')
          .values(
            parts.map(({ order, payNo, subMerchantId }) => ({
              pay_no: payNo,
              order_no: order.orderNo,
              buyer_id: order.buyerId,
              channel: request.channel,
              method: request.method,
              amount_fen: order.payable_fen,
              currency: order.currency,
              status: 'CREATED' as const,
              version: 0,
              open_order_no: order.orderNo,
              channel_trade_no: null,
              pay_action: null,
              disposition: null,
              refund_committed_fen: 0,
              refunded_fen: 0,
              finished: 0,
              combine_no: combineNo,
              sub_merchant_id: subMerchantId ?? null,
              expires_at_ms: checkout.expires_at_ms,
              created_at_ms: now_ms,
              updated_at_ms: now_ms,
              succeeded_at_ms: null,
              closed_at_ms: null,
            })),
          )
          .execute();
        for (const { payNo } of parts) await scheduleQuery(trx, payNo, 0, now_ms);
      });
    } catch (error) {
      // Another start for this checkout opened its attempt first: close it and go again.
      if (isUniqueViolation(error)) continue;
      throw error;
    }

    const subjectOf = (order: (typeof payable)[number]) => `tuangou ${order.orderNo}: ${order.lines.map((l) => l.title).join(', ')}`.slice(0, MAX_SUBJECT_LENGTH);
    const common = {
      expires_at_ms: checkout.expires_at_ms,
      method: request.method,
      notifyUrl: notifyUrl(centre, request.channel),
      returnUrl: request.returnUrl,
      payerId: request.payerId,
      payerIp: request.payerIp,
      requested_at_ms: now_ms,
    };
    const subOrders = parts.map(({ order, payNo, subMerchantId }) => ({ payNo, amount_fen: order.payable_fen, subject: subjectOf(order), ...(subMerchantId !== undefined && { subMerchantId }) }));
    try {
      const action =
        combineNo === null
          ? await channel.create({ ...common, ...subOrders[0]! })
          : await channel.createCombined({ ...common, combineNo, subOrders });
      centre.breakers.succeeded(request.channel);
      const reread = () => paymentsByNumber(db, parts.map(({ payNo }) => payNo));
      const created = await reread();
      if (created.some((part) => part.status === 'CLOSED')) {
        // Another start closed this attempt before the channel had it: close the trade just made
        // there too, so nothing payable is left behind that no query follows.
        await closeAtChannel(channel, created).catch((error: unknown) => platform.log.warn({ payNo: combineNo ?? parts[0]!.payNo, err: error }, 'could not close a superseded trade; a payment on it is refunded as a duplicate'));
        throw new AppError('payment_state_conflict', { message: 'Another payment attempt for this checkout replaced this one.', details: { payNo: combineNo ?? parts[0]!.payNo } });
      }
      for (const part of created) if (part.status === 'CREATED') await updatePayment(db, part, 'CREATED', { pay_action: JSON.stringify(action) }, platform.now());
      return attemptOf(checkoutNo, await reread());
    } catch (error) {
      // Refused: this attempt is over. Unreachable: the channel may have the trade, so it stays
      // open for the query job to decide, and the buyer may try again (which closes it first).
      if (isAppError(error, 'channel_unavailable')) centre.breakers.failed(request.channel, error.message, platform.now());
      if (isAppError(error, 'channel_refused')) {
        centre.breakers.succeeded(request.channel);
        for (const { payNo } of parts) {
          const failed = (await findPayment(db, payNo))!;
          if (failed.status === 'CREATED') await updatePayment(db, failed, 'FAILED', { closed_at_ms: platform.now() }, platform.now());
        }
      }
      throw error;
    }
  }
  throw new AppError('payment_state_conflict', { details: { checkoutNo } });
}

/** Refuses, before anything is written, a combined payment the channel cannot make: too many merchants, or a method its merges lack. */
function combinedPayable(channel: PaymentChannel, method: PayMethod, orders: number): void {
  if (orders > channel.maxSubOrders) {
    throw new AppError('too_many_merchants', { field: 'channel', details: { channel: channel.name, merchants: orders, maxSubOrders: channel.maxSubOrders } });
  }
  const methods = channel.combinedMethods ?? channel.methods;
  if (!methods.includes(method)) {
    throw new AppError('pay_method_not_supported', { field: 'method', message: `${channel.name} pays a checkout of several merchants by ${methods.join(', ')}.`, details: { methods } });
  }
}

export interface CashierChannel {
  channel: ChannelName;
  /** The ways this checkout can be paid on it (a combined payment may have fewer than the channel). */
  methods: readonly PayMethod[];
  available: boolean;
  /** Why not: out of the cashier for now (熔断), a merchant it cannot pay, or more merchants than it carries. */
  reason?: 'channel_down' | 'merchant_not_payable' | 'too_many_merchants';
  merchantIds?: number[];
}

/**
 * The cashier of one checkout: every configured channel, and whether it can pay every order of
 * it now — so the page offers only those; starting any other is refused with the same reason.
 */
export async function cashierFor(centre: PaymentCentre, checkoutNo: string, asBuyer?: number): Promise<CashierChannel[]> {
  const checkout = await getCheckout(centre.platform, checkoutNo, asBuyer);
  const payable = checkout.orders.filter((o) => o.payable_fen > 0);
  const merchantIds = [...new Set(payable.map((o) => o.merchantId))];
  const payees = await centre.payees(merchantIds);
  const now_ms = centre.platform.now();
  return [...centre.channels.values()].map((channel) => {
    const methods = payable.length > 1 ? (channel.combinedMethods ?? channel.methods) : channel.methods;
    const unpaid = merchantsWithoutAccount(payees, merchantIds, channel.name);
    if (!centre.breakers.health(channel.name, now_ms).available) return { channel: channel.name, methods, available: false, reason: 'channel_down' as const };
    if (unpaid.length > 0) return { channel: channel.name, methods, available: false, reason: 'merchant_not_payable' as const, merchantIds: unpaid };
    if (payable.length > channel.maxSubOrders) return { channel: channel.name, methods, available: false, reason: 'too_many_merchants' as const };
    return { channel: channel.name, methods, available: true };
  });
}

/** Open attempts by the trade they make at the channel: a combined payment's sub-payments together. */
function groupsOf(payments: readonly Payment[]): Payment[][] {
  const groups = new Map<string, Payment[]>();
  for (const payment of payments) {
    const key = payment.combineNo ?? payment.payNo;
    groups.set(key, [...(groups.get(key) ?? []), payment]);
  }
  return [...groups.values()];
}

function coversExactly(group: readonly Payment[], orders: readonly { orderNo: string; payable_fen: number }[]): boolean {
  return group.length === orders.length && orders.every((o) => group.some((a) => a.orderNo === o.orderNo && a.amount_fen === o.payable_fen));
}

/**
 * Each order's merchant at the channel: none for the platform's own goods (自营), paid into the
 * platform's merchant number; a marketplace merchant without an account there cannot be paid
 * through it, and the attempt is refused before anything is written, naming the channels that can.
 */
async function payeesFor(centre: PaymentCentre, channel: ChannelName, orders: readonly { merchantId: number }[]): Promise<Map<number, string | undefined>> {
  const merchantIds = [...new Set(orders.map((o) => o.merchantId))];
  const payees = await centre.payees(merchantIds);
  const missing = merchantsWithoutAccount(payees, merchantIds, channel);
  if (missing.length > 0) {
    const able = channelsPayingAll(payees, merchantIds, [...centre.channels.keys()]);
    throw new AppError('merchant_not_payable', {
      field: 'channel',
      message: `${channel} cannot pay merchant${missing.length > 1 ? 's' : ''} ${missing.join(', ')} of this checkout${able.length ? `; pay with ${able.join(' or ')}` : ''}.`,
      details: { channel, merchantIds: missing, channels: able },
    });
  }
  // The platform's own goods carry no sub-merchant id: they are paid into the platform's merchant number.
  return new Map(merchantIds.map((id) => [id, payees.get(id)!.selfOperated ? undefined : payees.get(id)!.accounts[channel]]));
}

function tooEarlyToSwitch(payment: Payment): AppError {
  return new AppError('payment_switch_too_early', {
    field: 'channel',
    message: `The ${payment.channel} payment opened a moment ago cannot be closed yet; pay it, or try another way in a minute.`,
    details: { payNo: payment.combineNo ?? payment.payNo, channel: payment.channel },
  });
}

/** The channel's close of an attempt's trade: the combined payment as a whole, with exactly its sub-orders. */
function closeAtChannel(channel: PaymentChannel, group: readonly Payment[]): Promise<'closed' | 'already_paid' | 'not_found' | 'too_early'> {
  const first = group[0]!;
  if (first.combineNo === null) return channel.close(first.payNo, sentAt(first));
  return channel.closeCombined(first.combineNo, subOrdersOf(group), sentAt(first));
}

function subOrdersOf(group: readonly Payment[]): CombinedSubOrder[] {
  return group.map((part) => ({ payNo: part.payNo, amount_fen: part.amount_fen, subject: '', ...(part.subMerchantId !== null && { subMerchantId: part.subMerchantId }) }));
}

function notPayable(status: string): never {
  throw new AppError('order_not_payable', { details: { status } });
}

async function scheduleQuery(trx: Parameters<typeof scheduleJob>[0], payNo: string, attempt: number, now_ms: number): Promise<void> {
  const delay_ms = PAYMENT_QUERY_BACKOFF_MS[Math.min(attempt, PAYMENT_QUERY_BACKOFF_MS.length - 1)]!;
  await scheduleJob(trx, { kind: PAYMENT_QUERY_JOB, key: `${PAYMENT_QUERY_JOB}:${payNo}:${attempt}`, payload: { payNo, attempt }, due_at_ms: now_ms + delay_ms }, now_ms);
}

/**
 * Closes an open attempt at its channel, then here: a combined payment's sub-payments all
 * together. A trade the channel says is paid is recorded as a success instead (the order decides
 * what it is). 'too_early' when the channel will not close it yet (WeChat: not within a minute of
 * creating a combined payment); it stays open.
 */
export async function closeAttempt(centre: PaymentCentre, payment: Payment): Promise<'closed' | 'paid' | 'too_early'> {
  const db = mustShard(centre.platform, payment.payNo);
  return closeGroup(centre, payment.combineNo === null ? [payment] : await paymentsOfCombine(db, payment.combineNo));
}

async function closeGroup(centre: PaymentCentre, group: readonly Payment[]): Promise<'closed' | 'paid' | 'too_early'> {
  const first = group[0]!;
  const channel = centre.channels.get(first.channel);
  if (!channel) throw new AppError('channel_not_configured', { details: { channel: first.channel } });
  const answer = await closeAtChannel(channel, group);
  if (answer === 'too_early') return 'too_early';
  if (answer === 'already_paid') {
    const trades = first.combineNo === null ? [await channel.query(first.payNo, sentAt(first))] : await channel.queryCombined(first.combineNo, subOrdersOf(group), sentAt(first));
    for (const trade of trades) await applyTradeResult(centre, trade);
    return 'paid';
  }
  const db = mustShard(centre.platform, first.payNo);
  for (const part of group) {
    const current = (await findPayment(db, part.payNo))!;
    if (current.status === 'CREATED') await updatePayment(db, current, 'CLOSED', { closed_at_ms: centre.platform.now() }, centre.platform.now());
  }
  return 'closed';
}

/**
 * 超时取消 or a buyer's cancel: the order's open attempts are closed at their channels, so a late
 * payment cannot succeed silently; one the channel says is paid is recorded, and refunded as
 * the cancelled order's. An order has at most MAX_PAYMENT_ATTEMPTS attempts.
 */
export async function closeOpenAttempts(centre: PaymentCentre, orderNo: string): Promise<void> {
  const db = centre.platform.shards.forOrderNo(orderNo);
  if (!db) return;
  for (const attempt of await paymentsOfOrder(db, orderNo)) {
    // Closed already by a sibling order's cancel (a combined payment closes as a whole), or too
    // early to close: the query job closes it once the checkout's time is up.
    const current = (await findPayment(db, attempt.payNo))!;
    if (current.status === 'CREATED') await closeAttempt(centre, current);
  }
}

/**
 * The active query (补单) of one open payment: a success found here is handled exactly like a
 * notification; an attempt past the order's time is closed at the channel; otherwise ask again later.
 */
export async function followPayment(centre: PaymentCentre, payload: { payNo: string; attempt: number }): Promise<void> {
  const db = mustShard(centre.platform, payload.payNo);
  const payment = await findPayment(db, payload.payNo);
  if (!payment) return;
  if (payment.status !== 'CREATED') {
    if (PAID_STATUSES.includes(payment.status) && payment.disposition === null) await applyToOrder(centre, payment.payNo);
    return;
  }
  const channel = centre.channels.get(payment.channel);
  if (!channel) throw new AppError('channel_not_configured', { details: { channel: payment.channel } });
  let decided = false;
  try {
    const trade = await channel.query(payment.payNo, sentAt(payment));
    if (trade.state === 'succeeded' || trade.state === 'closed' || trade.state === 'failed') {
      await applyTradeResult(centre, trade);
      decided = true;
    } else if (centre.platform.now() >= payment.expires_at_ms + CLOSE_GRACE_MS) {
      decided = (await closeAttempt(centre, payment)) !== 'too_early';
    }
  } catch (error) {
    if (!isAppError(error, 'channel_unavailable')) throw error;
    centre.platform.log.warn({ payNo: payment.payNo, err: error }, 'payment query: the channel did not answer; asking again later');
  }
  if (!decided) await transaction(db, (trx) => scheduleQuery(trx, payment.payNo, payload.attempt + 1, centre.platform.now()));
}
