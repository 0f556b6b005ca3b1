import { createHash } from 'node:crypto';
import { CHINA_OFFSET_MS } from '../../../payments/channels/types.ts';
import type { BillRow } from '../bills.ts';
import type { SandboxRefund, SandboxTrade } from '../trades.ts';

/** What the WeChat Pay platform says about trades and refunds: answer bodies, notification resources and the trade bill. */

export interface MerchantIds {
  appId: string;
  mchId: string;
}

/** Our pay methods as WeChat's trade_type, by the path the order was placed on. */
export const TRADE_TYPES: Readonly<Record<string, string>> = { native: 'NATIVE', jsapi: 'JSAPI', h5: 'MWEB', app: 'APP' };

const TRADE_STATE_DESC: Readonly<Record<string, string>> = {
  SUCCESS: '支付成功',
  REFUND: '转入退款',
  NOTPAY: '订单未支付',
  CLOSED: '订单已关闭',
};

export function rfc3339(at_ms: number): string {
  return new Date(at_ms + CHINA_OFFSET_MS).toISOString().slice(0, 19) + '+08:00';
}

function chinaDateTime(at_ms: number): string {
  return new Date(at_ms + CHINA_OFFSET_MS).toISOString().slice(0, 19).replace('T', ' ');
}

/** Paid trades stay SUCCESS or, once any refund went through, REFUND, even after a full refund closed it in the core. */
export function tradeState(trade: SandboxTrade): string {
  if (trade.paid_at_ms !== undefined) return trade.refunds.some((r) => r.state === 'SUCCESS') ? 'REFUND' : 'SUCCESS';
  return trade.state === 'CLOSED' ? 'CLOSED' : 'NOTPAY';
}

/** The payer's openid: the JSAPI one given, or one made up for the trade (WeChat knows who scanned). */
export function openid(trade: SandboxTrade): string {
  return trade.extra.openid ?? 'o' + createHash('sha256').update(trade.tradeNo).digest('base64url').slice(0, 27);
}

export function transactionBody(trade: SandboxTrade, ids: MerchantIds): Record<string, unknown> {
  const state = tradeState(trade);
  // A merchant's trade made by the platform (partner form) names both: sp_* the platform's, sub_mchid the merchant's.
  const partner = trade.subMerchantId !== undefined;
  const body: Record<string, unknown> = {
    ...(partner ? { sp_appid: ids.appId, sp_mchid: ids.mchId, sub_mchid: trade.subMerchantId } : { appid: ids.appId, mchid: ids.mchId }),
    out_trade_no: trade.payNo,
    trade_state: state,
    trade_state_desc: TRADE_STATE_DESC[state],
    attach: '',
    amount: { total: trade.amount_fen, currency: 'CNY', payer_currency: 'CNY' },
  };
  if (trade.paid_at_ms !== undefined) {
    Object.assign(body, {
      transaction_id: trade.tradeNo,
      trade_type: trade.method,
      bank_type: 'OTHERS',
      success_time: rfc3339(trade.paid_at_ms),
      payer: partner ? { sp_openid: openid(trade) } : { openid: openid(trade) },
      amount: { total: trade.amount_fen, payer_total: trade.amount_fen, currency: 'CNY', payer_currency: 'CNY' },
    });
  }
  return body;
}

/** One sub_order of a combined payment as the combine query and notice give it: amount.total_amount, its own transaction_id. */
export function subOrderBody(trade: SandboxTrade, ids: MerchantIds): Record<string, unknown> {
  const state = tradeState(trade);
  const body: Record<string, unknown> = {
    mchid: ids.mchId,
    sub_mchid: trade.subMerchantId,
    out_trade_no: trade.payNo,
    trade_state: state,
    attach: trade.extra.attach ?? '',
    amount: { total_amount: trade.amount_fen, currency: 'CNY' },
  };
  if (trade.paid_at_ms !== undefined) {
    Object.assign(body, {
      trade_type: trade.method,
      bank_type: 'OTHERS',
      transaction_id: trade.tradeNo,
      success_time: rfc3339(trade.paid_at_ms),
      amount: { total_amount: trade.amount_fen, payer_amount: trade.amount_fen, currency: 'CNY', payer_currency: 'CNY' },
    });
  }
  return body;
}

export function refundStatus(refund: SandboxRefund): string {
  return { SUCCESS: 'SUCCESS', FAILED: 'ABNORMAL', PROCESSING: 'PROCESSING' }[refund.state];
}

export function refundBody(trade: SandboxTrade, refund: SandboxRefund, status = refundStatus(refund)): Record<string, unknown> {
  return {
    refund_id: refund.channelRefundNo,
    out_refund_no: refund.refundNo,
    transaction_id: trade.tradeNo,
    out_trade_no: trade.payNo,
    channel: 'ORIGINAL',
    user_received_account: '支付用户零钱',
    ...(status === 'SUCCESS' && refund.succeeded_at_ms !== undefined ? { success_time: rfc3339(refund.succeeded_at_ms) } : {}),
    create_time: rfc3339(refund.created_at_ms),
    status,
    funds_account: 'AVAILABLE',
    amount: {
      total: trade.amount_fen,
      refund: refund.amount_fen,
      from: [],
      payer_total: trade.amount_fen,
      payer_refund: refund.amount_fen,
      settlement_refund: refund.amount_fen,
      settlement_total: trade.amount_fen,
      discount_refund: 0,
      currency: 'CNY',
      refund_fee: 0,
    },
    promotion_detail: [],
  };
}

/**
 * A refund notification's resource: like the refund answer, with refund_status for status. A
 * sub-merchant's trade (平台收付通) names the platform sp_mchid and the merchant sub_mchid instead of mchid.
 */
export function refundNoticeResource(trade: SandboxTrade, refund: SandboxRefund, mchId: string): Record<string, unknown> {
  const status = refundStatus(refund);
  return {
    ...(trade.subMerchantId === undefined ? { mchid: mchId } : { sp_mchid: mchId, sub_mchid: trade.subMerchantId }),
    transaction_id: trade.tradeNo,
    out_trade_no: trade.payNo,
    refund_id: refund.channelRefundNo,
    out_refund_no: refund.refundNo,
    refund_status: status,
    ...(status === 'SUCCESS' && refund.succeeded_at_ms !== undefined ? { success_time: rfc3339(refund.succeeded_at_ms) } : {}),
    user_received_account: '支付用户零钱',
    amount: { total: trade.amount_fen, refund: refund.amount_fen, payer_total: trade.amount_fen, payer_refund: refund.amount_fen },
  };
}

const BILL_COLUMNS = [
  '交易时间', '公众账号ID', '商户号', '特约商户号', '设备号', '微信订单号', '商户订单号', '用户标识', '交易类型', '交易状态',
  '付款银行', '货币种类', '应结订单金额', '代金券金额', '微信退款单号', '商户退款单号', '退款金额', '充值券退款金额', '退款类型',
  '退款状态', '商品名称', '商户数据包', '手续费', '费率', '订单金额', '申请退款金额', '费率备注',
];
const SUMMARY_COLUMNS = ['总交易单数', '应结订单总金额', '退款总金额', '充值券退款总金额', '手续费总金额', '订单总金额', '申请退款总金额'];
/** 0.60%, WeChat's usual rate; the fee in units of 0.00001 yuan is amount_fen × 6. */
const RATE = '0.60%';
const FEE_UNITS_PER_FEN = 6;

function yuan(fen: number): string {
  const abs = Math.abs(fen);
  return `${fen < 0 ? '-' : ''}${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, '0')}`;
}

function feeYuan(units: number): string {
  const abs = Math.abs(units);
  return `${units < 0 ? '-' : ''}${Math.floor(abs / 100_000)}.${String(abs % 100_000).padStart(5, '0')}`;
}

/**
 * The trade bill (bill_type=ALL) as WeChat writes it: a header, one backtick-prefixed line per
 * payment and per refund (refund lines carry the refund's time and zeroes in the order amounts),
 * then the summary header and line. Free text is written as is, commas included.
 */
export function tradeBill(rows: readonly BillRow[], ids: MerchantIds, tradeOf: (payNo: string) => SandboxTrade | undefined): string {
  const lines = [BILL_COLUMNS.join(',')];
  let settled = 0;
  let refunded = 0;
  let fees = 0;
  let ordered = 0;
  for (const row of rows) {
    const trade = tradeOf(row.payNo);
    const payment = row.kind === 'payment';
    const fee = (payment ? 1 : -1) * row.amount_fen * FEE_UNITS_PER_FEN;
    const cells: Record<string, string> = {
      交易时间: chinaDateTime(row.at_ms),
      公众账号ID: ids.appId,
      商户号: ids.mchId,
      // A sub-merchant's trade (a combined payment's sub-order) shows its merchant.
      特约商户号: trade?.subMerchantId ?? '0',
      设备号: '',
      微信订单号: row.tradeNo,
      商户订单号: row.payNo,
      用户标识: trade ? openid(trade) : '',
      交易类型: trade?.method ?? 'NATIVE',
      交易状态: payment ? 'SUCCESS' : 'REFUND',
      付款银行: 'OTHERS',
      货币种类: 'CNY',
      应结订单金额: yuan(payment ? row.amount_fen : 0),
      代金券金额: '0.00',
      微信退款单号: payment ? '0' : (row.channelRefundNo ?? ''),
      商户退款单号: payment ? '0' : (row.refundNo ?? ''),
      退款金额: yuan(payment ? 0 : row.amount_fen),
      充值券退款金额: '0.00',
      退款类型: payment ? '' : 'ORIGINAL',
      退款状态: payment ? '' : 'SUCCESS',
      商品名称: row.subject,
      商户数据包: '',
      手续费: feeYuan(fee),
      费率: RATE,
      订单金额: yuan(payment ? row.amount_fen : 0),
      申请退款金额: yuan(payment ? 0 : row.amount_fen),
      费率备注: '',
    };
    lines.push(BILL_COLUMNS.map((column) => '`' + cells[column]).join(','));
    if (payment) {
      settled += row.amount_fen;
      ordered += row.amount_fen;
    } else {
      refunded += row.amount_fen;
    }
    fees += fee;
  }
  lines.push(SUMMARY_COLUMNS.join(','));
  lines.push([String(rows.length), yuan(settled), yuan(refunded), '0.00', feeYuan(fees), yuan(ordered), yuan(refunded)].map((v) => '`' + v).join(','));
  return lines.join('\r\n') + '\r\n';
}
