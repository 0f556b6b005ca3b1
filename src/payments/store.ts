import type { Transaction } from 'kysely';
import type { PaymentsPlatform } from './centre.ts';
import type { PaymentOrderRow, PaymentRefundRow } from './tables.ts';
import { compareAndSet } from '../platform/db/compare-and-set.ts';
import { AppError, assert } from '../platform/errors.ts';
import type { ChannelName, PayAction, PayMethod } from './channels/types.ts';
import { PAYMENT_STATE_TABLE, REFUND_STATE_TABLE, type Disposition, type PaymentStatus, type RefundReason, type RefundStatus } from './state.ts';
import type { PaymentsShardDb, PaymentsShardTransaction } from './tables.ts';

export interface Payment {
  payNo: string;
  orderNo: string;
  buyerId: number;
  channel: ChannelName;
  method: PayMethod;
  amount_fen: number;
  currency: string;
  status: PaymentStatus;
  version: number;
  channelTradeNo: string | null;
  action: PayAction | null;
  disposition: Disposition | null;
  refundCommitted_fen: number;
  refunded_fen: number;
  finished: boolean;
  /** The combined payment this is a sub-payment of (合单); null for a single trade. */
  combineNo: string | null;
  subMerchantId: string | null;
  expires_at_ms: number;
  created_at_ms: number;
  succeeded_at_ms: number | null;
  closed_at_ms: number | null;
}

/** What finds a payment's trade again at its channel. */
export function sentAt(payment: Pick<Payment, 'created_at_ms' | 'combineNo' | 'subMerchantId'>): { requested_at_ms: number; combineNo?: string; subMerchantId?: string } {
  return {
    requested_at_ms: payment.created_at_ms,
    ...(payment.combineNo !== null && { combineNo: payment.combineNo }),
    ...(payment.subMerchantId !== null && { subMerchantId: payment.subMerchantId }),
  };
}

export interface Refund {
  refundNo: string;
  payNo: string;
  orderNo: string;
  channel: ChannelName;
  amount_fen: number;
  reason: RefundReason;
  lineNos: number[] | null;
  requestedBy: string;
  status: RefundStatus;
  version: number;
  channelRefundNo: string | null;
  failure: string | null;
  created_at_ms: number;
  succeeded_at_ms: number | null;
}

/** Pay and refund numbers are a letter and a 23-digit number carrying the order's shard gene. */
const NUMBER = /^[A-Z]\d{23}$/;

/** The order shard a pay number (or refund number) lives on; undefined for one that cannot be ours. */
export function shardOfNumber(platform: PaymentsPlatform, no: string): PaymentsShardDb | undefined {
  return NUMBER.test(no) ? platform.shards.forOrderNo(no.slice(1)) : undefined;
}

export function mustShard(platform: PaymentsPlatform, payNo: string): PaymentsShardDb {
  const db = shardOfNumber(platform, payNo);
  if (!db) throw new AppError('payment_not_found');
  return db;
}

export function toPayment(r: PaymentOrderRow): Payment {
  return {
    payNo: r.pay_no,
    orderNo: r.order_no,
    buyerId: Number(r.buyer_id),
    channel: r.channel as ChannelName,
    method: r.method as PayMethod,
    amount_fen: Number(r.amount_fen),
    currency: r.currency,
    status: r.status as PaymentStatus,
    version: Number(r.version),
    channelTradeNo: r.channel_trade_no,
    action: r.pay_action ? (JSON.parse(r.pay_action) as PayAction) : null,
    disposition: r.disposition as Disposition | null,
    refundCommitted_fen: Number(r.refund_committed_fen),
    refunded_fen: Number(r.refunded_fen),
    finished: Number(r.finished) === 1,
    combineNo: r.combine_no,
    subMerchantId: r.sub_merchant_id,
    expires_at_ms: Number(r.expires_at_ms),
    created_at_ms: Number(r.created_at_ms),
    succeeded_at_ms: r.succeeded_at_ms === null ? null : Number(r.succeeded_at_ms),
    closed_at_ms: r.closed_at_ms === null ? null : Number(r.closed_at_ms),
  };
}

export function toRefund(r: PaymentRefundRow): Refund {
  return {
    refundNo: r.refund_no,
    payNo: r.pay_no,
    orderNo: r.order_no,
    channel: r.channel as ChannelName,
    amount_fen: Number(r.amount_fen),
    reason: r.reason as RefundReason,
    lineNos: r.line_nos ? (JSON.parse(r.line_nos) as number[]) : null,
    requestedBy: r.requested_by,
    status: r.status as RefundStatus,
    version: Number(r.version),
    channelRefundNo: r.channel_refund_no,
    failure: r.failure,
    created_at_ms: Number(r.created_at_ms),
    succeeded_at_ms: r.succeeded_at_ms === null ? null : Number(r.succeeded_at_ms),
  };
}

export async function findPayment(db: PaymentsShardDb | PaymentsShardTransaction, payNo: string): Promise<Payment | undefined> {
  const row = await db.selectFrom('payment_orders').selectAll().where('pay_no', '=', payNo).executeTakeFirst();
  return row && toPayment(row);
}

/** The sub-payments of a combined payment, in the order they were sent. */
export async function paymentsOfCombine(db: PaymentsShardDb | PaymentsShardTransaction, combineNo: string): Promise<Payment[]> {
  const rows = await db.selectFrom('payment_orders').selectAll().where('combine_no', '=', combineNo).orderBy('pay_no').execute();
  return rows.map(toPayment);
}

/** Every payment attempt of some orders (a checkout's), oldest first, in one statement. */
export async function paymentsOfOrders(db: PaymentsShardDb | PaymentsShardTransaction, orderNos: readonly string[]): Promise<Payment[]> {
  if (orderNos.length === 0) return [];
  const rows = await db.selectFrom('payment_orders').selectAll().where('order_no', 'in', [...orderNos]).orderBy('pay_no').execute();
  return rows.map(toPayment);
}

/** These payments, in the order asked; every one must exist. */
export async function paymentsByNumber(db: PaymentsShardDb | PaymentsShardTransaction, payNos: readonly string[]): Promise<Payment[]> {
  const rows = await db.selectFrom('payment_orders').selectAll().where('pay_no', 'in', [...payNos]).execute();
  const byNo = new Map(rows.map((r) => [r.pay_no, toPayment(r)]));
  return payNos.map((payNo) => {
    const payment = byNo.get(payNo);
    assert(payment, () => `payment ${payNo} is gone`);
    return payment;
  });
}

/** Every payment attempt of an order, oldest first (an order has a handful at most). */
export async function paymentsOfOrder(db: PaymentsShardDb | PaymentsShardTransaction, orderNo: string): Promise<Payment[]> {
  const rows = await db.selectFrom('payment_orders').selectAll().where('order_no', '=', orderNo).orderBy('pay_no').execute();
  return rows.map(toPayment);
}

export async function findRefund(db: PaymentsShardDb | PaymentsShardTransaction, refundNo: string): Promise<Refund | undefined> {
  const row = await db.selectFrom('payment_refunds').selectAll().where('refund_no', '=', refundNo).executeTakeFirst();
  return row && toRefund(row);
}

export async function refundsOfPayment(db: PaymentsShardDb | PaymentsShardTransaction, payNo: string): Promise<Refund[]> {
  const rows = await db.selectFrom('payment_refunds').selectAll().where('pay_no', '=', payNo).orderBy('refund_no').execute();
  return rows.map(toRefund);
}

export async function refundsOfOrder(db: PaymentsShardDb | PaymentsShardTransaction, orderNo: string): Promise<Refund[]> {
  const rows = await db.selectFrom('payment_refunds').selectAll().where('order_no', '=', orderNo).orderBy('created_at_ms').execute();
  return rows.map(toRefund);
}

type PaymentChanges = Partial<
  Pick<PaymentOrderRow, 'channel_trade_no' | 'disposition' | 'refunded_fen' | 'refund_committed_fen' | 'finished' | 'succeeded_at_ms' | 'closed_at_ms' | 'pay_action'>
>;

/**
 * The only way a payment changes: a compare-and-set on status and version. A status change
 * is checked against the table; leaving CREATED frees the order's open-payment slot.
 * Returns false when another writer got there first (the compare-and-set's one convention).
 */
export async function updatePayment(
  trx: PaymentsShardTransaction | PaymentsShardDb,
  payment: Pick<Payment, 'payNo' | 'status' | 'version'>,
  to: PaymentStatus,
  changes: PaymentChanges,
  now_ms: number,
): Promise<boolean> {
  const release = to !== 'CREATED' ? { open_order_no: null } : {};
  return compareAndSet(trx, PAYMENT_STATE_TABLE, { pay_no: payment.payNo }, { state: payment.status, version: payment.version }, to, { ...changes, updated_at_ms: now_ms, ...release });
}

type RefundChanges = Partial<Pick<PaymentRefundRow, 'channel_refund_no' | 'failure' | 'succeeded_at_ms'>>;

/** The only way a refund changes: as a payment does; false when another writer got there first. */
export async function updateRefund(
  trx: PaymentsShardTransaction | PaymentsShardDb,
  refund: Pick<Refund, 'refundNo' | 'status' | 'version'>,
  to: RefundStatus,
  changes: RefundChanges,
  now_ms: number,
): Promise<boolean> {
  return compareAndSet(trx, REFUND_STATE_TABLE, { refund_no: refund.refundNo }, { state: refund.status, version: refund.version }, to, { ...changes, updated_at_ms: now_ms });
}
