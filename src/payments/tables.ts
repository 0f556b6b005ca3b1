import type { Generated, Kysely, Transaction } from 'kysely';
import type { OutboxTables } from '../events/index.ts';
import type { JobsTables } from '../jobs/index.ts';
import type { OrdersTables } from '../orders/index.ts';
import type { ChannelName, PayMethod } from './channels/types.ts';
import type { DifferenceKind } from './difference-kinds.ts';
import type { Disposition, PaymentStatus, RefundReason, RefundStatus } from './state.ts';

/** The payments module's tables on the order shards; no other module names them. Amounts are BIGINT fen; times BIGINT ms since the epoch, UTC. */
export interface PaymentsShardTables {
  payment_orders: PaymentOrderRow;
  payment_refunds: PaymentRefundRow;
}

/** The payments module's tables on the main database; no other module names them. Amounts are BIGINT fen; times BIGINT ms since the epoch, UTC. */
export interface PaymentsMainTables {
  reconciliation_runs: ReconciliationRunRow;
  reconciliation_differences: ReconciliationDifferenceRow;
}

/** The handles payments' functions take: the shard with its payments and refunds (beside their orders), and the main database with its reconciliation runs. */
export type PaymentsShardDb = Kysely<PaymentsShardHandleTables>;
export type PaymentsShardTransaction = Transaction<PaymentsShardHandleTables>;
/** A payment's success moves its order in the same transaction on the shard: the handle carries orders' tables for orders' functions; payments never names them. */
type PaymentsShardHandleTables = PaymentsShardTables & OrdersTables & OutboxTables & JobsTables;
export type PaymentsMainDb = Kysely<PaymentsMainTables & OutboxTables & JobsTables>;

export interface PaymentOrderRow {
  pay_no: string;
  order_no: string;
  buyer_id: number;
  channel: ChannelName;
  method: PayMethod;
  amount_fen: number;
  currency: string;
  status: PaymentStatus;
  version: number;
  /** The order number while the payment is CREATED, null after: one open payment per order. */
  open_order_no: string | null;
  channel_trade_no: string | null;
  /** JSON of the PayAction the buyer's device was given. */
  pay_action: string | null;
  disposition: Disposition | null;
  /** Refunds asked for and not failed: never more than the amount. */
  refund_committed_fen: number;
  refunded_fen: number;
  /** 1 when the channel says the trade can no longer be refunded (TRADE_FINISHED). */
  finished: number;
  /** The combined payment (合单) this is a sub-payment of; null for a single trade. */
  combine_no: string | null;
  /** The merchant the money is for at the channel (sub_mchid, smid, …); null for the platform's own goods. */
  sub_merchant_id: string | null;
  expires_at_ms: number;
  created_at_ms: number;
  updated_at_ms: number;
  succeeded_at_ms: number | null;
  closed_at_ms: number | null;
}

export interface PaymentRefundRow {
  refund_no: string;
  pay_no: string;
  order_no: string;
  channel: ChannelName;
  amount_fen: number;
  reason: RefundReason;
  line_nos: string | null;
  request_key: string | null;
  /** sha256 of what the keyed request asked for; null for refunds the system makes (and those written before it was kept). */
  request_hash: string | null;
  requested_by: string;
  status: RefundStatus;
  version: number;
  channel_refund_no: string | null;
  failure: string | null;
  created_at_ms: number;
  updated_at_ms: number;
  succeeded_at_ms: number | null;
}

export interface ReconciliationRunRow {
  id: Generated<number>;
  channel: string;
  bill_date: string;
  source: string;
  bill_rows: number;
  matched: number;
  differences: number;
  started_at_ms: number;
  finished_at_ms: number;
}

export interface ReconciliationDifferenceRow {
  id: Generated<number>;
  run_id: number;
  kind: DifferenceKind;
  item: string;
  pay_no: string;
  refund_no: string | null;
  channel_trade_no: string | null;
  ours_fen: number | null;
  channel_fen: number | null;
  ours_status: string | null;
  action: string;
  action_status: string;
  note: string | null;
}
