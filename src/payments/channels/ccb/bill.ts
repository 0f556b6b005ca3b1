import { strToU8, unzipSync, zipSync } from 'fflate';
import type { BillRecord } from '../types.ts';
import { chinaDateTime, chinaStamp, decodeGb18030, fenToYuan, parseChinaTime, yuanToFen } from './protocol.ts';

/**
 * CCB's merchant bill (商户流水, from 5W1005 + 6W0111): a zip named
 * SHOP.{merchant}.{date}.{date}.{made at}.{4 random}.zip holding SHOP.{merchant}.{date}.txt
 * (and an .xlsx we do not write or read). The text file is tab-separated with a trailing tab:
 * a summary line of `名称[值]` cells, the header line, then one line per payment or refund. A
 * refund is a line whose 交易金额 is negative, with the refund number in 商户流水号.
 */

export const BILL_COLUMNS = [
  '交易时间', '记账日期', '银行流水号', '商户流水号', '订单号', '订单状态', '付款方账号/客户号', '付款方户名',
  '订单金额', '交易金额', '手续费', '结算金额', '柜台代码', '发卡行/通道', '支付卡种', '交易类型', '期数',
  '授权号', '项目号', '基本户', '备注一', '备注二',
] as const;

/** Most lines a bill file may hold; a day past this is split by the bank into pages we do not model. */
export const MAX_BILL_LINES = 500_000;

export interface BillFileRow {
  kind: 'payment' | 'refund';
  payNo: string;
  /** The bank serial of this line: the payment's, or the refund's own. */
  bankSerial: string;
  refundNo?: string;
  amount_fen: number;
  total_fen: number;
  at_ms: number;
}

export function billFileNames(merchantId: string, date: string, made_at_ms: number, random: string): { zip: string; txt: string } {
  const day = date.replaceAll('-', '');
  return {
    zip: `SHOP.${merchantId}.${day}.${day}.${chinaStamp(made_at_ms)}000.${random}.zip`,
    txt: `SHOP.${merchantId}.${day}.txt`,
  };
}

export function formatBillZip(input: { merchantId: string; posId: string; date: string; made_at_ms: number; random: string; rows: readonly BillFileRow[] }): { name: string; bytes: Uint8Array } {
  const day = input.date.replaceAll('-', '');
  let net_fen = 0;
  const lines = input.rows.map((r) => {
    const signed_fen = r.kind === 'refund' ? -r.amount_fen : r.amount_fen;
    net_fen += signed_fen;
    const amount = fenToYuan(signed_fen);
    const cells = [
      chinaDateTime(r.at_ms), day, r.bankSerial, r.refundNo ?? '', r.payNo, '成功', '', '',
      fenToYuan(r.total_fen), amount, '0.00', amount, input.posId, '建行', '其他卡种', '', '1', '', '', '', '--', '--',
    ];
    return cells.join('\t') + '\t';
  });
  const summary =
    `出单日期[${day}]\t交易日期[${day}]\t交易笔数[${input.rows.length}]\t交易金额[${fenToYuan(net_fen)}]\t手续费[0.00]\t结算金额[${fenToYuan(net_fen)}]\t`;
  const text = [summary, BILL_COLUMNS.join('\t') + '\t', ...lines].join('\n') + '\n';
  const names = billFileNames(input.merchantId, input.date, input.made_at_ms, input.random);
  return { name: names.zip, bytes: zipSync({ [names.txt]: strToU8(text) }) };
}

/** Reads the bill zip (or its bare text file) into records. Throws on a file it cannot read. */
export function parseBillZip(file: Uint8Array): BillRecord[] {
  const text = billText(file);
  const lines = text.split(/\r?\n/);
  if (lines.length > MAX_BILL_LINES) throw new Error(`the bill has more than ${MAX_BILL_LINES} lines`);
  const headerAt = lines.findIndex((l) => l.startsWith('交易时间\t'));
  if (headerAt < 0) throw new Error('the bill has no header line');
  const header = lines[headerAt]!.split('\t');
  const col = (name: (typeof BILL_COLUMNS)[number]) => {
    const at = header.indexOf(name);
    if (at < 0) throw new Error(`the bill has no ${name} column`);
    return at;
  };
  const at = { time: col('交易时间'), serial: col('银行流水号'), merchantSerial: col('商户流水号'), order: col('订单号'), status: col('订单状态'), amount: col('交易金额') };
  const records: BillRecord[] = [];
  for (const line of lines.slice(headerAt + 1)) {
    if (line.trim() === '') continue;
    const cells = line.split('\t');
    if (cells[at.status] !== '成功') continue;
    const signed_fen = yuanToFen(cells[at.amount] ?? '');
    const at_ms = parseChinaTime(cells[at.time] ?? '');
    if (at_ms === undefined) throw new Error(`bad time in bill line: ${line}`);
    const refundNo = cells[at.merchantSerial] ?? '';
    const record: BillRecord = {
      kind: signed_fen < 0 ? 'refund' : 'payment',
      payNo: cells[at.order] ?? '',
      channelTradeNo: cells[at.serial] ?? '',
      amount_fen: Math.abs(signed_fen),
      at_ms,
    };
    if (record.kind === 'refund' && refundNo !== '') record.refundNo = refundNo;
    records.push(record);
  }
  return records;
}

function billText(file: Uint8Array): string {
  const isZip = file[0] === 0x50 && file[1] === 0x4b;
  let bytes = file;
  if (isZip) {
    const entries = unzipSync(file);
    const name = Object.keys(entries).find((n) => n.toLowerCase().endsWith('.txt'));
    if (!name) throw new Error('the bill zip holds no .txt file');
    bytes = entries[name]!;
  }
  // The sample seen was UTF-8; the bank's other files are GB18030, so fall back to it.
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return decodeGb18030(bytes);
  }
}
