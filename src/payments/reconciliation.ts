
import { insertReturningId } from '../platform/db/sql.ts';
import { AppError, isAppError } from '../platform/errors.ts';
import type { PaymentCentre } from './centre.ts';
import { CHINA_OFFSET_MS, type BillRecord, type ChannelName } from './channels/types.ts';
import { applyRefundResult } from './refunds.ts';
import { applyTradeResult } from './results.ts';
import { PAID_STATUSES } from './state.ts';
import { findPayment, mustShard, sentAt, shardOfNumber, toPayment, toRefund, type Payment, type Refund } from './store.ts';

import { DIFFERENCE_KINDS, type DifferenceKind } from './difference-kinds.ts';
import type { PaymentsMainDb, PaymentsShardDb } from './tables.ts';
export { DIFFERENCE_KINDS, type DifferenceKind };

export interface Difference {
  kind: DifferenceKind;
  item: 'payment' | 'refund';
  payNo: string;
  refundNo: string | null;
  channelTradeNo: string | null;
  ours_fen: number | null;
  channel_fen: number | null;
  oursStatus: string | null;
  action: string;
  /** done: repaired here; proposed: for a person; carried: looked at again in the next day's run. */
  actionStatus: 'done' | 'proposed' | 'carried';
  note: string | null;
}

/** Our success this close to the day's end may be on the channel's next day (clocks, settlement cut-off). */
export const CROSS_DAY_WINDOW_MS = 10 * 60_000;
/** Most rows one day's bill, or our side of it, may have. */
export const MAX_RECONCILE_ROWS = 500_000;
const IN_LIST_CHUNK = 500;
const DAY_MS = 24 * 3600_000;

/** The start of a China-time day, as an instant. */
export function chinaDayStart(date: string): number {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(date) || Number.isNaN(Date.parse(`${date}T00:00:00Z`))) {
    throw new AppError('invalid_field', { field: 'date', message: 'The bill date is YYYY-MM-DD.' });
  }
  return Date.parse(`${date}T00:00:00Z`) - CHINA_OFFSET_MS;
}

export interface ReconcileRequest {
  channel: ChannelName;
  date: string;
  /** The bill file, when it was fetched some other way; otherwise it is downloaded. */
  file?: Uint8Array;
  source?: string;
}

/**
 * Reconciles one channel's day: the bill (downloaded, or read from a file) against our
 * payments and refunds. Items the channel has that we missed are repaired from the channel's
 * own query, exactly as a late notification would; the rest are reported with the action
 * proposed. The run and every difference are stored.
 */
export async function reconcile(centre: PaymentCentre, request: ReconcileRequest): Promise<{ runId: number; billRows: number; matched: number; differences: Difference[] }> {
  const channel = centre.channels.get(request.channel);
  if (!channel) throw new AppError('channel_not_configured', { details: { channel: request.channel } });
  const started_at_ms = centre.platform.now();
  const dayStart = chinaDayStart(request.date);
  const dayEnd = dayStart + DAY_MS;
  const bill = channel.parseBill(request.file ?? (await channel.downloadBill(request.date)));
  if (bill.length > MAX_RECONCILE_ROWS) throw new Error(`the bill has ${bill.length} rows, more than ${MAX_RECONCILE_ROWS}`);

  const ours = await loadOurSide(centre, request.channel, bill, dayStart - CROSS_DAY_WINDOW_MS, dayEnd);
  const differences: Difference[] = [];
  let matched = 0;
  const seenPayments = new Set<string>();
  const seenRefunds = new Set<string>();

  for (const row of bill) {
    if (row.kind === 'payment') {
      seenPayments.add(row.payNo);
      const payment = ours.payments.get(row.payNo);
      const found = await comparePayment(centre, row, payment, dayStart);
      if (found) differences.push(found);
      else matched++;
    } else {
      seenRefunds.add(row.refundNo ?? '');
      const refund = row.refundNo ? ours.refunds.get(row.refundNo) : undefined;
      const found = await compareRefund(centre, row, refund);
      if (found) differences.push(found);
      else matched++;
    }
  }
  for (const payment of ours.payments.values()) {
    const at = payment.succeeded_at_ms;
    if (seenPayments.has(payment.payNo) || at === null || at < dayStart || at >= dayEnd || !PAID_STATUSES.includes(payment.status)) continue;
    const nearMidnight = at >= dayEnd - CROSS_DAY_WINDOW_MS;
    differences.push({
      ...ourPaymentFacts(payment),
      kind: nearMidnight ? 'cross_day' : 'short',
      channel_fen: null,
      action: nearMidnight ? 'recheck_next_day' : 'hold_as_suspect',
      actionStatus: nearMidnight ? 'carried' : 'proposed',
      note: nearMidnight ? 'succeeded just before midnight; expected on the next day’s bill' : 'our success is missing from the bill; recheck with the next day’s file',
    });
  }
  for (const refund of ours.refunds.values()) {
    const at = refund.succeeded_at_ms;
    if (seenRefunds.has(refund.refundNo) || refund.status !== 'SUCCEEDED' || at === null || at < dayStart || at >= dayEnd) continue;
    const nearMidnight = at >= dayEnd - CROSS_DAY_WINDOW_MS;
    differences.push({
      kind: nearMidnight ? 'cross_day' : 'long',
      item: 'refund',
      payNo: refund.payNo,
      refundNo: refund.refundNo,
      channelTradeNo: null,
      ours_fen: refund.amount_fen,
      channel_fen: null,
      oursStatus: refund.status,
      action: nearMidnight ? 'recheck_next_day' : 'query_refund_and_review',
      actionStatus: nearMidnight ? 'carried' : 'proposed',
      note: nearMidnight ? 'refunded just before midnight; expected on the next day’s bill' : 'our refund is missing from the bill',
    });
  }

  const runId = await storeRun(centre.platform.db, {
    channel: request.channel,
    date: request.date,
    source: request.source ?? (request.file ? 'file' : 'download'),
    billRows: bill.length,
    matched,
    differences,
    started_at_ms,
    finished_at_ms: centre.platform.now(),
  });
  return { runId, billRows: bill.length, matched, differences };
}

function ourPaymentFacts(payment: Payment): Pick<Difference, 'item' | 'payNo' | 'refundNo' | 'channelTradeNo' | 'ours_fen' | 'oursStatus'> {
  return { item: 'payment', payNo: payment.payNo, refundNo: null, channelTradeNo: payment.channelTradeNo, ours_fen: payment.amount_fen, oursStatus: payment.status };
}

async function comparePayment(centre: PaymentCentre, row: BillRecord, payment: Payment | undefined, dayStart: number): Promise<Difference | undefined> {
  const base = { item: 'payment' as const, payNo: row.payNo, refundNo: null, channelTradeNo: row.channelTradeNo, channel_fen: row.amount_fen, note: null };
  if (!payment) {
    return { ...base, kind: 'long', ours_fen: null, oursStatus: null, action: 'refund_or_claim', actionStatus: 'proposed', note: 'the channel took money under a pay number we do not have' };
  }
  if (!PAID_STATUSES.includes(payment.status)) {
    // The channel took the money and we never heard: the same repair a late notification makes.
    const repaired = await repairPayment(centre, payment.payNo);
    return {
      ...base,
      kind: 'long',
      ours_fen: payment.amount_fen,
      oursStatus: payment.status,
      action: repaired ? 'recorded_success_from_query' : 'recheck',
      actionStatus: repaired ? 'done' : 'proposed',
      note: repaired ? `now ${repaired}` : 'the channel’s query does not confirm the bill yet',
    };
  }
  if (payment.amount_fen !== row.amount_fen) {
    return { ...base, kind: 'amount_mismatch', ours_fen: payment.amount_fen, oursStatus: payment.status, action: 'manual_review', actionStatus: 'proposed' };
  }
  if (payment.succeeded_at_ms !== null && payment.succeeded_at_ms < dayStart) {
    return { ...base, kind: 'cross_day', ours_fen: payment.amount_fen, oursStatus: payment.status, action: 'matched_previous_day', actionStatus: 'done', note: 'on our books the day before' };
  }
  return undefined;
}

async function compareRefund(centre: PaymentCentre, row: BillRecord, refund: Refund | undefined): Promise<Difference | undefined> {
  const base = { item: 'refund' as const, payNo: row.payNo, refundNo: row.refundNo ?? null, channelTradeNo: row.channelTradeNo, channel_fen: row.amount_fen, note: null };
  if (!refund) {
    return { ...base, kind: 'short', ours_fen: null, oursStatus: null, action: 'manual_review', actionStatus: 'proposed', note: 'the channel refunded money we never asked it to' };
  }
  if (refund.status !== 'SUCCEEDED') {
    const repaired = await repairRefund(centre, refund);
    return {
      ...base,
      kind: 'status_mismatch',
      ours_fen: refund.amount_fen,
      oursStatus: refund.status,
      action: repaired ? 'recorded_refund_from_query' : 'recheck',
      actionStatus: repaired ? 'done' : 'proposed',
      note: repaired ? 'now SUCCEEDED' : null,
    };
  }
  if (refund.amount_fen !== row.amount_fen) {
    return { ...base, kind: 'amount_mismatch', ours_fen: refund.amount_fen, oursStatus: refund.status, action: 'manual_review', actionStatus: 'proposed' };
  }
  return undefined;
}

async function repairPayment(centre: PaymentCentre, payNo: string): Promise<string | undefined> {
  const db = shardOfNumber(centre.platform, payNo)!;
  const row = await db.selectFrom('payment_orders').select(['channel', 'created_at_ms', 'combine_no', 'sub_merchant_id']).where('pay_no', '=', payNo).executeTakeFirstOrThrow();
  const channel = centre.channels.get(row.channel as ChannelName)!;
  try {
    const trade = await channel.query(payNo, sentAt({ created_at_ms: Number(row.created_at_ms), combineNo: row.combine_no, subMerchantId: row.sub_merchant_id }));
    if (trade.state !== 'succeeded') return undefined;
    await applyTradeResult(centre, trade);
  } catch (error) {
    if (isAppError(error, 'channel_unavailable')) return undefined;
    throw error;
  }
  const after = await db.selectFrom('payment_orders').select(['status', 'disposition']).where('pay_no', '=', payNo).executeTakeFirstOrThrow();
  return `${after.status}${after.disposition ? ` (${after.disposition})` : ''}`;
}

async function repairRefund(centre: PaymentCentre, refund: Refund): Promise<boolean> {
  const channel = centre.channels.get(refund.channel)!;
  try {
    const payment = await findPayment(mustShard(centre.platform, refund.payNo), refund.payNo);
    const answer = await channel.queryRefund(refund.payNo, refund.refundNo, { ...(payment && sentAt(payment)), requested_at_ms: refund.created_at_ms });
    if (answer.state !== 'succeeded') return false;
    return (await applyRefundResult(centre, answer)) === 'applied';
  } catch (error) {
    if (isAppError(error, 'channel_unavailable')) return false;
    throw error;
  }
}

/** Our payments and refunds of the channel that the day concerns: the bill's items, and our successes of the day. */
async function loadOurSide(centre: PaymentCentre, channel: ChannelName, bill: BillRecord[], from_ms: number, to_ms: number) {
  const payments = new Map<string, Payment>();
  const refunds = new Map<string, Refund>();
  for (const db of centre.platform.shards.databases) {
    const paid = await db
      .selectFrom('payment_orders')
      .selectAll()
      .where('channel', '=', channel)
      .where('succeeded_at_ms', '>=', from_ms)
      .where('succeeded_at_ms', '<', to_ms)
      .limit(MAX_RECONCILE_ROWS + 1)
      .execute();
    const refunded = await db
      .selectFrom('payment_refunds')
      .selectAll()
      .where('channel', '=', channel)
      .where('succeeded_at_ms', '>=', from_ms)
      .where('succeeded_at_ms', '<', to_ms)
      .limit(MAX_RECONCILE_ROWS + 1)
      .execute();
    if (paid.length > MAX_RECONCILE_ROWS || refunded.length > MAX_RECONCILE_ROWS) throw new Error(`more than ${MAX_RECONCILE_ROWS} items of ours in one day`);
    for (const r of paid) payments.set(r.pay_no, toPayment(r));
    for (const r of refunded) refunds.set(r.refund_no, toRefund(r));
  }
  // The bill's items we did not load by time (a success we never recorded, one recorded on another day).
  const byShard = new Map<PaymentsShardDb, { payNos: string[]; refundNos: string[] }>();
  for (const row of bill) {
    const db = shardOfNumber(centre.platform, row.payNo);
    if (!db) continue;
    const wanted = byShard.get(db) ?? { payNos: [], refundNos: [] };
    byShard.set(db, wanted);
    if (row.kind === 'payment' && !payments.has(row.payNo)) wanted.payNos.push(row.payNo);
    if (row.kind === 'refund' && row.refundNo && !refunds.has(row.refundNo)) wanted.refundNos.push(row.refundNo);
  }
  for (const [db, wanted] of byShard) {
    for (let i = 0; i < wanted.payNos.length; i += IN_LIST_CHUNK) {
      const rows = await db.selectFrom('payment_orders').selectAll().where('pay_no', 'in', wanted.payNos.slice(i, i + IN_LIST_CHUNK)).execute();
      for (const r of rows) payments.set(r.pay_no, toPayment(r));
    }
    for (let i = 0; i < wanted.refundNos.length; i += IN_LIST_CHUNK) {
      const rows = await db.selectFrom('payment_refunds').selectAll().where('refund_no', 'in', wanted.refundNos.slice(i, i + IN_LIST_CHUNK)).execute();
      for (const r of rows) refunds.set(r.refund_no, toRefund(r));
    }
  }
  return { payments, refunds };
}

async function storeRun(
  db: PaymentsMainDb,
  run: { channel: string; date: string; source: string; billRows: number; matched: number; differences: Difference[]; started_at_ms: number; finished_at_ms: number },
): Promise<number> {
  return db.transaction().execute(async (trx) => {
    const id = await insertReturningId(
      trx,
      trx.insertInto('reconciliation_runs').values({
        channel: run.channel,
        bill_date: run.date,
        source: run.source.slice(0, 250),
        bill_rows: run.billRows,
        matched: run.matched,
        differences: run.differences.length,
        started_at_ms: run.started_at_ms,
        finished_at_ms: run.finished_at_ms,
      }),
    );
    for (let i = 0; i < run.differences.length; i += IN_LIST_CHUNK) {
      await trx
        .insertInto('reconciliation_differences')
        .values(
          run.differences.slice(i, i + IN_LIST_CHUNK).map((d) => ({
            run_id: id,
            kind: d.kind,
            item: d.item,
            pay_no: d.payNo,
            refund_no: d.refundNo,
            channel_trade_no: d.channelTradeNo,
            ours_fen: d.ours_fen,
            channel_fen: d.channel_fen,
            ours_status: d.oursStatus,
            action: d.action,
            action_status: d.actionStatus,
            note: d.note?.slice(0, 250) ?? null,
          })),
        )
        .execute();
    }
    return id;
  });
}

export async function listReconciliations(db: PaymentsMainDb, query: { channel?: ChannelName; limit: number }) {
  let select = db.selectFrom('reconciliation_runs').selectAll();
  if (query.channel) select = select.where('channel', '=', query.channel);
  const rows = await select.orderBy('id', 'desc').limit(query.limit).execute();
  return rows.map((r) => ({
    id: Number(r.id),
    channel: r.channel,
    billDate: r.bill_date,
    source: r.source,
    billRows: Number(r.bill_rows),
    matched: Number(r.matched),
    differences: Number(r.differences),
    startedAt: new Date(Number(r.started_at_ms)).toISOString(),
    finishedAt: new Date(Number(r.finished_at_ms)).toISOString(),
  }));
}

export async function reconciliationReport(db: PaymentsMainDb, id: number) {
  const run = await db.selectFrom('reconciliation_runs').selectAll().where('id', '=', id).executeTakeFirst();
  if (!run) return undefined;
  const rows = await db.selectFrom('reconciliation_differences').selectAll().where('run_id', '=', id).orderBy('id').execute();
  return {
    id: Number(run.id),
    channel: run.channel,
    billDate: run.bill_date,
    source: run.source,
    billRows: Number(run.bill_rows),
    matched: Number(run.matched),
    differences: rows.map((d) => ({
      kind: d.kind,
      item: d.item,
      payNo: d.pay_no,
      refundNo: d.refund_no,
      channelTradeNo: d.channel_trade_no,
      oursFen: d.ours_fen === null ? null : Number(d.ours_fen),
      channelFen: d.channel_fen === null ? null : Number(d.channel_fen),
      oursStatus: d.ours_status,
      action: d.action,
      actionStatus: d.action_status,
      note: d.note,
    })),
  };
}
