import { zipSync } from 'fflate';
import iconv from 'iconv-lite';
import type { BillRow } from '../bills.ts';
import { chinaTime, yuan } from './protocol.ts';
import { buyerOf } from './trade-api.ts';

/**
 * Alipay's trade bill for one day, as its download URL serves it: a zip of two GBK CSV files,
 * `<pid>_<yyyyMMdd>_业务明细.csv` with one row per payment or refund and
 * `<pid>_<yyyyMMdd>_业务明细(汇总).csv` with the totals, each framed by `#` comment lines.
 * Every value is followed by a tab, as Alipay writes them to keep long numbers as text.
 */

export const DETAIL_COLUMNS = [
  '支付宝交易号', '商户订单号', '业务类型', '商品名称', '创建时间', '完成时间', '门店编号', '门店名称', '操作员', '终端号', '对方账户',
  '订单金额（元）', '商家实收（元）', '支付宝红包（元）', '集分宝（元）', '支付宝优惠（元）', '商家优惠（元）', '券核销金额（元）', '券名称',
  '商家红包消费金额（元）', '卡消费金额（元）', '退款批次号/请求号', '服务费（元）', '分润（元）', '备注',
] as const;

const SUMMARY_COLUMNS = ['门店编号', '门店名称', '交易订单总笔数', '退款订单总笔数', '订单金额（元）', '商家实收（元）', '支付宝优惠（元）', '商家优惠（元）', '卡消费金额（元）', '服务费（元）', '分润（元）', '实收净额（元）'];

export function alipayBillFile(sellerId: string, date: string, rows: readonly BillRow[], now_ms: number): { name: string; zip: Uint8Array } {
  const ymd = date.replaceAll('-', '');
  const prefix = `${sellerId}_${ymd}`;
  const detail = detailCsv(sellerId, date, rows, now_ms);
  const summary = summaryCsv(sellerId, date, rows, now_ms);
  const zip = zipSync({
    [`${prefix}_业务明细.csv`]: iconv.encode(detail, 'gbk'),
    [`${prefix}_业务明细(汇总).csv`]: iconv.encode(summary, 'gbk'),
  });
  return { name: `${prefix}.csv.zip`, zip };
}

function detailCsv(sellerId: string, date: string, rows: readonly BillRow[], now_ms: number): string {
  const lines = [...heading('业务明细', sellerId, date), DETAIL_COLUMNS.join(',')];
  let payments = 0, paid_fen = 0, refunds = 0, refunded_fen = 0;
  for (const row of rows) {
    const signed_fen = row.kind === 'refund' ? -row.amount_fen : row.amount_fen;
    if (row.kind === 'refund') (refunds++, (refunded_fen += row.amount_fen));
    else (payments++, (paid_fen += row.amount_fen));
    const cells: Record<(typeof DETAIL_COLUMNS)[number], string> = {
      支付宝交易号: row.tradeNo,
      商户订单号: row.payNo,
      业务类型: row.kind === 'refund' ? '退款' : '交易',
      商品名称: row.subject,
      创建时间: chinaTime(row.created_at_ms),
      完成时间: chinaTime(row.at_ms),
      门店编号: '', 门店名称: '', 操作员: '', 终端号: '',
      对方账户: buyerOf(row.tradeNo).buyer_logon_id,
      '订单金额（元）': yuan(signed_fen),
      '商家实收（元）': yuan(signed_fen),
      '支付宝红包（元）': '0.00', '集分宝（元）': '0.00', '支付宝优惠（元）': '0.00', '商家优惠（元）': '0.00', '券核销金额（元）': '0.00', 券名称: '',
      '商家红包消费金额（元）': '0.00', '卡消费金额（元）': '0.00',
      '退款批次号/请求号': row.refundNo ?? '',
      '服务费（元）': '0.00', '分润（元）': '0.00', 备注: '',
    };
    lines.push(DETAIL_COLUMNS.map((column) => cell(cells[column])).join(','));
  }
  lines.push(
    '#-----------------------------------------业务明细列表结束------------------------------------',
    `#交易合计：${payments}笔，商家实收共：${yuan(paid_fen)}元，商家优惠共：0.00元`,
    `#退款合计：${refunds}笔，商家实收退款共：${yuan(-refunded_fen)}元，商家优惠退款共：0.00元`,
    `#导出时间：[${chineseTime(now_ms)}]`,
  );
  return lines.join('\r\n') + '\r\n';
}

function summaryCsv(sellerId: string, date: string, rows: readonly BillRow[], now_ms: number): string {
  const payments = rows.filter((r) => r.kind === 'payment');
  const refunds = rows.filter((r) => r.kind === 'refund');
  const net_fen = payments.reduce((s, r) => s + r.amount_fen, 0) - refunds.reduce((s, r) => s + r.amount_fen, 0);
  const total = ['合计', '', String(payments.length), String(refunds.length), yuan(net_fen), yuan(net_fen), '0.00', '0.00', '0.00', '0.00', '0.00', yuan(net_fen)];
  return [
    ...heading('业务汇总', sellerId, date),
    SUMMARY_COLUMNS.join(','),
    total.map(cell).join(','),
    '#-----------------------------------------业务汇总列表结束------------------------------------',
    `#导出时间：[${chineseTime(now_ms)}]`,
  ].join('\r\n') + '\r\n';
}

function heading(kind: string, sellerId: string, date: string): string[] {
  const [y, m, d] = date.split('-');
  const next = new Date(Date.UTC(+y!, +m! - 1, +d! + 1)).toISOString().slice(0, 10).split('-');
  return [
    `#支付宝${kind}查询`,
    `#账号：[${sellerId}0156]`,
    `#起始日期：[${y}年${m}月${d}日 00:00:00]   终止日期：[${next[0]}年${next[1]}月${next[2]}日 00:00:00]`,
    `#-----------------------------------------${kind}列表----------------------------------------`,
  ];
}

/** A value as Alipay writes it: followed by a tab; quoted only when it holds a comma or a quote. */
function cell(value: string): string {
  const flat = value.replace(/[\r\n]+/g, ' ');
  const text = `${flat}\t`;
  return /[",]/.test(flat) ? `"${text.replaceAll('"', '""')}"` : text;
}

function chineseTime(at_ms: number): string {
  const t = chinaTime(at_ms);
  return `${t.slice(0, 4)}年${t.slice(5, 7)}月${t.slice(8, 10)}日 ${t.slice(11)}`;
}
