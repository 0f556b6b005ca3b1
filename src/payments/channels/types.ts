/**
 * What the payment centre needs from a payment channel, in the platform's words. Each
 * adapter (alipay, wechat, unionpay, ccb) translates these to its channel's protocol and
 * back; nothing channel-specific (field names, amounts in yuan, signatures, bill formats)
 * leaves the adapter.
 */

export const CHANNELS = ['alipay', 'wechat', 'unionpay', 'ccb'] as const;
export type ChannelName = (typeof CHANNELS)[number];

/** How the buyer pays: scan a QR code, a mobile web page, a desktop page, inside WeChat, or an app. */
export const PAY_METHODS = ['qr', 'h5', 'page', 'jsapi', 'app'] as const;
export type PayMethod = (typeof PAY_METHODS)[number];

export interface CreateTradeRequest {
  /** Our payment number: the channel's merchant order number (out_trade_no, orderId, ORDERID). */
  payNo: string;
  amount_fen: number;
  subject: string;
  /** The order's remaining time is passed on, so the channel stops taking money when we do. */
  expires_at_ms: number;
  method: PayMethod;
  /** Where the channel sends its signed notifications. */
  notifyUrl: string;
  /** Where the buyer's browser goes back after paying (page and h5 methods). */
  returnUrl?: string;
  /** The payer's id at the channel where the method needs one (WeChat JSAPI openid). */
  payerId?: string;
  /** The buyer's IP address, as their device reached us (WeChat H5 checks it against the device). */
  payerIp?: string;
  /**
   * When we recorded the attempt. Channels that know a transaction by the time it was sent
   * (UnionPay's txnTime) send this, and are given it again with every later question.
   */
  requested_at_ms?: number;
  /**
   * A marketplace merchant's id at the channel when the trade pays one merchant's order alone: the
   * trade is then made in the channel's service-provider form (WeChat /v3/pay/partner/transactions/*
   * with sub_mchid, Alipay sub_merchant, the custody order with one sub-order), so the money lands
   * in that merchant's account, never the platform's (二清). Absent for the platform's own goods (自营).
   */
  subMerchantId?: string;
}

/**
 * What finds a trade again at its channel: the attempt's recorded time (UnionPay's txnTime),
 * and for a sub-order of a combined payment its combined number and merchant (WeChat queries a
 * sub-order only through its combine number, and refunds it under its sub_mchid).
 */
export interface SentAt {
  requested_at_ms: number;
  /** The combined payment this trade is a sub-order of (combine_out_trade_no, out_merge_no, Main_Ordr_No). */
  combineNo?: string;
  /** The merchant's id at the channel (see CombinedSubOrder.subMerchantId). */
  subMerchantId?: string;
}

/**
 * One merchant's part of a combined payment (合单支付): a real trade of its own at the channel,
 * with its own channel trade number, refunded, queried and reconciled on its own.
 */
export interface CombinedSubOrder {
  /** Our sub-payment number: the sub-order's merchant order number (sub_orders[].out_trade_no, order_details[].out_trade_no, Cmdty_Ordr_No). */
  payNo: string;
  /** More than 0: channels refuse an empty sub-order, and the payment centre leaves those out. */
  amount_fen: number;
  subject: string;
  /**
   * The merchant's id at this channel (WeChat sub_mchid, Alipay smid, the custody bank's merchant
   * number); absent for the platform's own goods (自营), paid into the platform's merchant number.
   */
  subMerchantId?: string;
}

/** 合单支付: one checkout paid once, one sub-order per merchant; all succeed or none does. */
export interface CreateCombinedRequest extends Omit<CreateTradeRequest, 'payNo' | 'amount_fen' | 'subject'> {
  /** Our combined number: WeChat combine_out_trade_no, Alipay out_merge_no, CCB Main_Ordr_No. */
  combineNo: string;
  /** Between 1 and the channel's maxSubOrders, each with its own payNo. */
  subOrders: readonly CombinedSubOrder[];
}

/** What the buyer's device does next. */
export type PayAction =
  | { kind: 'qr_code'; codeUrl: string }
  | { kind: 'redirect'; url: string }
  /** An auto-submitting HTML form (UnionPay front transaction, Alipay page pay). */
  | { kind: 'form'; html: string }
  /** Parameters for the channel's client SDK (WeChat JSAPI/app). */
  | { kind: 'sdk_params'; params: Record<string, string> };

/**
 * A trade as the channel sees it. `succeeded` covers every state in which the money was
 * taken, refunded in part or in full or not (Alipay TRADE_SUCCESS/TRADE_FINISHED and a
 * TRADE_CLOSED after a full refund, WeChat SUCCESS/REFUND): refunds are followed on their own.
 */
export type TradeState = 'pending' | 'succeeded' | 'closed' | 'failed' | 'not_found';

export interface ChannelTrade {
  payNo: string;
  state: TradeState;
  /** The channel's own trade number (trade_no, transaction_id, queryId, …). */
  channelTradeNo?: string;
  amount_fen?: number;
  paid_at_ms?: number;
  /** Total refunded so far, when the channel says it. */
  refunded_fen?: number;
  /** No longer refundable (Alipay TRADE_FINISHED). */
  finished?: boolean;
}

export type RefundState = 'processing' | 'succeeded' | 'failed' | 'closed' | 'not_found';

export interface RefundRequest {
  payNo: string;
  channelTradeNo?: string;
  /** Our refund number: the channel's idempotency key for this refund (out_request_no, out_refund_no, …). */
  refundNo: string;
  amount_fen: number;
  /** The whole payment's amount; WeChat and others want it with every refund. */
  total_fen: number;
  reason: string;
  notifyUrl: string;
  /** When we recorded the refund (see CreateTradeRequest.requested_at_ms). */
  requested_at_ms?: number;
  /**
   * Set when the trade is a sub-order of a combined payment: it is refunded as the sub-order's own
   * trade, under its merchant (WeChat /v3/ecommerce/refunds/apply with sub_mchid and the
   * sub-order's transaction_id; never by the combine number). total_fen is then the sub-order's amount.
   */
  combineNo?: string;
  subMerchantId?: string;
}

export interface ChannelRefund {
  payNo: string;
  refundNo: string;
  state: RefundState;
  channelRefundNo?: string;
  amount_fen?: number;
  succeeded_at_ms?: number;
  /** The channel's words when it refused or failed the refund. */
  failure?: string;
}

/**
 * A verified notification, translated. A combined payment's notice carries every sub-order's
 * trade (WeChat sends one callback for all of them); each is applied as a trade of its own.
 */
export type ChannelNotice =
  | { kind: 'trade'; trade: ChannelTrade }
  | { kind: 'combined'; combineNo: string; trades: ChannelTrade[] }
  | { kind: 'refund'; refund: ChannelRefund };

/** The notification request exactly as it arrived; signatures cover the raw bytes. */
export interface InboundRequest {
  method: string;
  /** Path and query. */
  url: string;
  /** Header names in lower case. */
  headers: Readonly<Record<string, string | undefined>>;
  rawBody: string;
}

/** The HTTP answer a channel needs to stop (accepted) or keep (rejected) retrying. */
export interface ChannelAnswer {
  status: number;
  contentType: string;
  body: string;
}

/** One row of the channel's bill (对账单), in our words. */
export interface BillRecord {
  kind: 'payment' | 'refund';
  payNo: string;
  channelTradeNo: string;
  refundNo?: string;
  amount_fen: number;
  /** When the channel completed it. */
  at_ms: number;
}

export interface PaymentChannel {
  readonly name: ChannelName;
  readonly methods: readonly PayMethod[];
  create(request: CreateTradeRequest): Promise<PayAction>;
  query(payNo: string, sent?: SentAt): Promise<ChannelTrade>;
  /** Closes an unpaid trade so it can no longer be paid. A paid one is reported, not closed. */
  close(payNo: string, sent?: SentAt): Promise<'closed' | 'already_paid' | 'not_found'>;
  /** Idempotent by refundNo: asking again returns the same refund. */
  refund(request: RefundRequest): Promise<ChannelRefund>;
  /** The most sub-orders one combined payment may carry at this channel (WeChat 平台收付通: 50). */
  readonly maxSubOrders: number;
  /** The ways a combined payment can be paid, where fewer than `methods` (Alipay merges have no QR form); all of `methods` when absent. */
  readonly combinedMethods?: readonly PayMethod[];
  /** 合单支付: one payment action for every sub-order. Idempotent by combineNo with the same sub-orders. */
  createCombined(request: CreateCombinedRequest): Promise<PayAction>;
  /** Every sub-order's trade, asked by the combined number (WeChat answers a sub-order only so). */
  queryCombined(combineNo: string, subOrders: readonly CombinedSubOrder[], sent?: SentAt): Promise<ChannelTrade[]>;
  /**
   * Closes an unpaid combined payment as a whole (WeChat: with exactly the sub-orders it was made
   * with, and not within a minute of creation — the adapter says 'too_early' then). A paid one is reported.
   */
  closeCombined(combineNo: string, subOrders: readonly CombinedSubOrder[], sent?: SentAt): Promise<'closed' | 'already_paid' | 'not_found' | 'too_early'>;
  queryRefund(payNo: string, refundNo: string, sent?: SentAt): Promise<ChannelRefund>;
  /**
   * Verifies the signature before reading anything else, then translates. A request that
   * fails verification throws AppError('notification_rejected'); nothing in it is trusted.
   */
  parseNotification(request: InboundRequest): Promise<ChannelNotice>;
  /**
   * The answer for a handled notification (accepted), one to be sent again (rejected: we could
   * not handle it), or one that failed verification (forged: a 4xx where the channel allows, so
   * it does not count as our failure).
   */
  answer(outcome: 'accepted' | 'rejected' | 'forged'): ChannelAnswer;
  /** The channel's bill for a day (YYYY-MM-DD in China time), in the channel's own file format. */
  downloadBill(date: string): Promise<Uint8Array>;
  parseBill(file: Uint8Array): BillRecord[];
}

/** China Standard Time, which every channel uses for its timestamps and bill days. */
export const CHINA_OFFSET_MS = 8 * 3600_000;

/** 'YYYY-MM-DD' of an instant in China time. */
export function chinaDate(at_ms: number): string {
  return new Date(at_ms + CHINA_OFFSET_MS).toISOString().slice(0, 10);
}
