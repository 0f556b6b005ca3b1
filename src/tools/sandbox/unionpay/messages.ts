import type { ZmRow } from '../../../payments/channels/unionpay/bill.ts';
import { TRADE_CODE_CONSUME, TRADE_CODE_REFUND } from '../../../payments/channels/unionpay/bill.ts';
import { ACP_ENCODING, ACP_SIGN_METHOD_RSA, ACP_VERSION, CURRENCY_CNY, chinaStamp, signFields, type AcpFields } from '../../../payments/channels/unionpay/protocol.ts';
import type { BillRow } from '../bills.ts';
import type { SandboxCombined, SandboxRefund, SandboxTrade } from '../trades.ts';

/** What the sandbox says as UnionPay: responses, notifications and bill lines, signed with UnionPay's key. */

/** A masked card number, as 5.1.0 messages show it. */
export const SANDBOX_ACC_NO = '6216***********0018';
const SANDBOX_INSTITUTION = '48021000';
/** Grocery stores, the group-buy merchant's category. */
const SANDBOX_MCC = '5411';

/** UnionPay's 21-digit queryId, taken from the core's longer channel number so it is stable. */
export function queryIdOf(channelNo: string): string {
  return channelNo.replace(/\D/g, '').slice(-21).padStart(21, '0');
}

/** MMDDhhmmss in China time (traceTime, the bill's 交易传输时间). */
export function traceStamp(at_ms: number): string {
  return chinaStamp(at_ms).slice(4);
}

/** MMDD, the settlement day. UnionPay's day switches at 23:00; the sandbox uses the calendar day. */
export function settleDateOf(at_ms: number): string {
  return chinaStamp(at_ms).slice(4, 8);
}

export function signAsUnionpay(fields: AcpFields, signer: { certPem: string; keyPem: string }): AcpFields {
  return signFields({ version: ACP_VERSION, encoding: ACP_ENCODING, signMethod: ACP_SIGN_METHOD_RSA, ...fields, signPubKeyCert: signer.certPem }, signer.keyPem);
}

/** Signed over different content, so the signature is well-formed but wrong: the misSign fault. */
export function misSignAsUnionpay(fields: AcpFields, signer: { certPem: string; keyPem: string }): AcpFields {
  const good = signAsUnionpay(fields, signer);
  const other = signAsUnionpay({ ...fields, txnAmt: `${fields.txnAmt ?? ''}0` }, signer);
  return { ...good, signature: other.signature! };
}

export function paidFields(trade: SandboxTrade, merId: string): AcpFields {
  const queryId = queryIdOf(trade.tradeNo);
  const paid_at_ms = trade.paid_at_ms!;
  return {
    accessType: '0',
    bizType: trade.extra.bizType ?? '000201',
    txnType: '01',
    txnSubType: trade.extra.txnSubType ?? '01',
    merId,
    orderId: trade.payNo,
    txnTime: trade.extra.txnTime ?? '',
    txnAmt: String(trade.amount_fen),
    currencyCode: CURRENCY_CNY,
    queryId,
    traceNo: queryId.slice(-6),
    traceTime: traceStamp(paid_at_ms),
    settleAmt: String(trade.amount_fen),
    settleCurrencyCode: CURRENCY_CNY,
    settleDate: settleDateOf(paid_at_ms),
    accNo: SANDBOX_ACC_NO,
    payCardType: '01',
    payType: '0001',
    reqReserved: trade.extra.reqReserved ?? '',
    // Echoed as sent (?): a one-merchant split, or empty for the platform's own (dropped when signing).
    accSplitData: trade.extra.accSplitData ?? '',
    respCode: '00',
    respMsg: 'Success!',
  };
}

/** The one consume of a combined payment, paid: its total, the shared queryId, the split and our sub-order numbers echoed. */
export function combinedPaidFields(combined: SandboxCombined, trades: readonly SandboxTrade[], merId: string): AcpFields {
  const first = trades[0]!;
  const total_fen = trades.reduce((sum, trade) => sum + trade.amount_fen, 0);
  return {
    ...paidFields(first, merId),
    orderId: combined.combineNo,
    txnTime: combined.extra.txnTime ?? '',
    txnAmt: String(total_fen),
    settleAmt: String(total_fen),
    reqReserved: combined.extra.reqReserved ?? '',
    accSplitData: combined.extra.accSplitData ?? '',
  };
}

export function refundFields(trade: SandboxTrade, refund: SandboxRefund, merId: string, sent: { txnTime: string; reqReserved: string }): AcpFields {
  const queryId = queryIdOf(refund.channelRefundNo);
  const at_ms = refund.succeeded_at_ms ?? refund.created_at_ms;
  return {
    accessType: '0',
    bizType: '000201',
    txnType: '04',
    txnSubType: '00',
    merId,
    orderId: refund.refundNo,
    txnTime: sent.txnTime,
    txnAmt: String(refund.amount_fen),
    currencyCode: CURRENCY_CNY,
    queryId,
    origQryId: queryIdOf(trade.tradeNo),
    traceNo: queryId.slice(-6),
    traceTime: traceStamp(at_ms),
    settleAmt: String(refund.amount_fen),
    settleCurrencyCode: CURRENCY_CNY,
    settleDate: settleDateOf(at_ms),
    reqReserved: sent.reqReserved,
    respCode: '00',
    respMsg: 'Success!',
  };
}

const fen12 = (fen: number) => String(fen).padStart(12, '0');

/** One ZM line for a bill row: credit (C) for a payment, debit (D) for a refund; no fees in the sandbox. */
export function zmRowOf(row: BillRow, merId: string): ZmRow {
  const payment = row.kind === 'payment';
  const queryId = queryIdOf(payment ? row.tradeNo : (row.channelRefundNo ?? `${row.tradeNo}${row.refundNo ?? ''}`));
  const sign = payment ? 'C' : 'D';
  return {
    tradeCode: payment ? TRADE_CODE_CONSUME : TRADE_CODE_REFUND,
    acqInsCode: SANDBOX_INSTITUTION,
    sendInsCode: SANDBOX_INSTITUTION,
    traceNo: queryId.slice(-6),
    txnTime: traceStamp(row.at_ms),
    accNo: SANDBOX_ACC_NO,
    txnAmt: fen12(row.amount_fen),
    merCatCode: SANDBOX_MCC,
    termType: '07',
    queryId,
    oldPayType: '01',
    orderId: payment ? row.payNo : (row.refundNo ?? ''),
    payCardType: '01',
    origTraceNo: payment ? '' : queryIdOf(row.tradeNo).slice(-6),
    origTxnTime: payment ? '' : traceStamp(row.created_at_ms),
    merFee: `D${fen12(0)}`,
    settleAmt: `${sign}${fen12(row.amount_fen)}`,
    payType: '0001',
    txnType: payment ? '01' : '04',
    txnSubType: payment ? '01' : '00',
    bizType: '000201',
    accType: '01',
    interactMode: '1',
    origQryId: payment ? '' : queryIdOf(row.tradeNo),
    merId,
    settleNetAmt: `${sign}${fen12(row.amount_fen)}`,
    tradeMedia: '0',
    origOrderId: payment ? '' : row.payNo,
  };
}
