import { chinaDate, type ChannelName } from '../../payments/channels/types.ts';
import type { SandboxTrade } from './trades.ts';

/** A change to one day's bill, to give reconciliation differences to find. */
export type BillEdit =
  | { kind: 'omit'; channel: ChannelName; date: string; payNo: string; refundNo?: string }
  | { kind: 'amount'; channel: ChannelName; date: string; payNo: string; refundNo?: string; amount_fen: number }
  | { kind: 'add'; channel: ChannelName; date: string; row: BillRow };

export interface BillRow {
  kind: 'payment' | 'refund';
  payNo: string;
  tradeNo: string;
  refundNo?: string;
  channelRefundNo?: string;
  amount_fen: number;
  /** The trade's total, which payment and refund rows both show. */
  total_fen: number;
  subject: string;
  created_at_ms: number;
  at_ms: number;
}

/** One day's bill (China date) of a channel: payments completed and refunds succeeded that day, then the edits. */
export function dayBill(trades: Iterable<SandboxTrade>, edits: readonly BillEdit[], channel: ChannelName, date: string): BillRow[] {
  const rows: BillRow[] = [];
  for (const trade of trades) {
    if (trade.channel !== channel) continue;
    const base = { payNo: trade.payNo, tradeNo: trade.tradeNo, total_fen: trade.amount_fen, subject: trade.subject, created_at_ms: trade.created_at_ms };
    if (trade.paid_at_ms !== undefined && chinaDate(trade.paid_at_ms) === date) rows.push({ ...base, kind: 'payment', amount_fen: trade.amount_fen, at_ms: trade.paid_at_ms });
    for (const refund of trade.refunds) {
      if (refund.state !== 'SUCCESS' || chinaDate(refund.succeeded_at_ms!) !== date) continue;
      rows.push({ ...base, kind: 'refund', refundNo: refund.refundNo, channelRefundNo: refund.channelRefundNo, amount_fen: refund.amount_fen, at_ms: refund.succeeded_at_ms! });
    }
  }
  for (const edit of edits) {
    if (edit.channel !== channel || edit.date !== date) continue;
    if (edit.kind === 'add') {
      rows.push(edit.row);
      continue;
    }
    const at = rows.findIndex((row) => row.payNo === edit.payNo && row.refundNo === edit.refundNo);
    if (at < 0) continue;
    if (edit.kind === 'omit') rows.splice(at, 1);
    else rows[at] = { ...rows[at]!, amount_fen: edit.amount_fen };
  }
  return rows.sort((a, b) => a.at_ms - b.at_ms);
}
