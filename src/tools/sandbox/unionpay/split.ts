import type { AcpFields } from '../../../payments/channels/unionpay/protocol.ts';
import { SPLIT_MERCHANT_ID, UNIONPAY_MAX_SUB_ORDERS, readAccSplitData, readCombinedReserved } from '../../../payments/channels/unionpay/split.ts';
import type { ZmRow } from '../../../payments/channels/unionpay/bill.ts';
import type { BillRow } from '../bills.ts';
import type { SandboxCore } from '../core.ts';
import { SandboxError, type SandboxTrade } from '../trades.ts';
import { queryIdOf } from './messages.ts';

/**
 * The sandbox's side of UnionPay's split consume (see payments/channels/unionpay/split.ts for
 * what is documented and what is ours): a consume with accSplitData over several merchants is the
 * core's combined payment, a trade per split entry, all under one channel number so they share
 * the consume's queryId; one with a single entry is a trade for that merchant.
 */

type Refusal = { respCode: string; respMsg: string };

const badSplit: Refusal = { respCode: '10', respMsg: '报文格式错误[accSplitData]' };
const duplicate: Refusal = { respCode: '12', respMsg: '重复交易' };

export function openCombined(core: SandboxCore, f: AcpFields, method: string, expires_at_ms: number): { payNo: string } | Refusal {
  const split = readAccSplitData(f.accSplitData);
  const total_fen = Number(f.txnAmt);
  if (!split || split.length > UNIONPAY_MAX_SUB_ORDERS || split.some((entry) => !SPLIT_MERCHANT_ID.test(entry.merId))) return badSplit;
  if (new Set(split.map((entry) => entry.merId)).size !== split.length || split.reduce((sum, entry) => sum + entry.amount_fen, 0) !== total_fen) return badSplit;
  const orderId = f.orderId!;
  const subject = /commodityName=([^&}]*)/.exec(f.riskRateInfo ?? '')?.[1] ?? orderId;
  const extra = { txnTime: f.txnTime!, bizType: f.bizType ?? '', txnSubType: f.txnSubType ?? '', reqReserved: f.reqReserved ?? '', accSplitData: f.accSplitData! };
  const payNos = readCombinedReserved(f.reqReserved);
  try {
    if (!payNos) {
      // One merchant's order alone: a plain trade whose money is that merchant's.
      if (split.length !== 1) return badSplit;
      const existing = core.trade('unionpay', orderId);
      if (existing && existing.extra.txnTime !== f.txnTime) return duplicate;
      return core.createTrade({ channel: 'unionpay', payNo: orderId, amount_fen: total_fen, subject, method, notifyUrl: f.backUrl!, returnUrl: f.frontUrl, expires_at_ms, extra, subMerchantId: split[0]!.merId });
    }
    if (payNos.length !== split.length) return badSplit;
    const existing = core.combined('unionpay', orderId);
    if (existing && existing.extra.txnTime !== f.txnTime) return duplicate;
    const made = core.createCombined({
      channel: 'unionpay',
      combineNo: orderId,
      subOrders: split.map((entry, index) => ({ payNo: payNos[index]!, amount_fen: entry.amount_fen, subject, subMerchantId: entry.merId })),
      method,
      notifyUrl: f.backUrl!,
      ...(f.frontUrl !== undefined ? { returnUrl: f.frontUrl } : {}),
      expires_at_ms,
      extra: { ...extra, consumeNo: core.newChannelNo() },
    });
    // One consume, one queryId: every sub-order carries the consume's channel number.
    for (const trade of made.trades) trade.tradeNo = made.combined.extra.consumeNo!;
    return { payNo: orderId };
  } catch (error) {
    if (error instanceof SandboxError) return duplicate;
    throw error;
  }
}

/**
 * The trade a refund gives money back from: by origQryId, and for a split consume the one
 * merchant its accSplitData names — the sub-order is refunded as itself.
 */
export function splitRefundTarget(core: SandboxCore, f: AcpFields): { trade: SandboxTrade } | Refusal {
  const notFound: Refusal = { respCode: '35', respMsg: '原交易不存在或状态不正确' };
  const matching = core.listTrades('unionpay').filter((trade) => queryIdOf(trade.tradeNo) === f.origQryId);
  if (matching.length === 0) return notFound;
  const combined = matching[0]!.combineNo !== undefined;
  const split = readAccSplitData(f.accSplitData);
  if (!combined && !split) return { trade: matching[0]! };
  if (!split || split.length !== 1 || split[0]!.amount_fen !== Number(f.txnAmt)) return badSplit;
  const trade = matching.find((candidate) => candidate.subMerchantId === split[0]!.merId);
  return trade ? { trade } : notFound;
}

/**
 * The split columns of a bill line (?): a sub-order's line is under the consume's orderId, with its
 * merchant as 二级商户 and our sub-order number in 商户自定义域, from which the adapter reads it back.
 */
export function zmSplitFields(core: SandboxCore, row: BillRow): ZmRow {
  const trade = core.trade('unionpay', row.payNo);
  if (!trade || trade.combineNo === undefined) return {};
  const fields: ZmRow = { splitMode: '1', subMerId: trade.subMerchantId ?? '', subMerAmt: String(row.amount_fen).padStart(13, '0'), merReserved: trade.payNo };
  if (row.kind === 'payment') fields.orderId = trade.combineNo;
  else fields.origOrderId = trade.combineNo;
  return fields;
}
