import type { ChannelName } from '../../payments/channels/types.ts';

/** The sandbox's record of what a channel holds: trades, their refunds, and what happened to them. */

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
  /** The combined payment (合单) this trade is a sub-order of; paid only with all its siblings. */
  combineNo: string | undefined;
  /** The merchant the money is for at the channel (sub_mchid, smid, Mkt_Mrch_Id); undefined for the platform's own. */
  subMerchantId: string | undefined;
}

/** A combined payment: one payment action over several trades, which succeed together or not at all. */
export interface SandboxCombined {
  channel: ChannelName;
  combineNo: string;
  /** The sub-orders' pay numbers, in the order they were sent. */
  payNos: string[];
  method: string;
  notifyUrl: string;
  created_at_ms: number;
  expires_at_ms: number;
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
  /** Every sub-order of a combined payment succeeded at once; `trade` is the first, for routing. */
  | { kind: 'combined_paid'; trade: SandboxTrade; combined: SandboxCombined; trades: SandboxTrade[] }
  | { kind: 'refunded'; trade: SandboxTrade; refund: SandboxRefund }
  | { kind: 'closed'; trade: SandboxTrade }
  | { kind: 'finished'; trade: SandboxTrade };

export class SandboxError extends Error {
  constructor(
    readonly code: 'trade_not_found' | 'trade_exists' | 'not_payable' | 'not_refundable' | 'refund_exceeds' | 'refund_failed' | 'sub_orders_differ',
    message: string,
  ) {
    super(message);
    this.name = 'SandboxError';
  }
}
