import { gunzipSync } from 'node:zlib';
import type { BillRecord } from '../types.ts';
import { unavailable } from './http.ts';
import { parseChinaDateTime, yuanToFen } from './protocol.ts';

/**
 * The trade bill (交易账单, bill_type=ALL): a UTF-8 CSV whose header names the columns, every
 * value prefixed with a backtick so spreadsheets keep long numbers as text, amounts in yuan,
 * then a summary header and one summary line.
 */
export const TRADE_BILL_COLUMNS = [
  '交易时间', '公众账号ID', '商户号', '特约商户号', '设备号', '微信订单号', '商户订单号', '用户标识', '交易类型',
  '交易状态', '付款银行', '货币种类', '应结订单金额', '代金券金额', '微信退款单号', '商户退款单号', '退款金额',
  '充值券退款金额', '退款类型', '退款状态', '商品名称', '商户数据包', '手续费', '费率', '订单金额', '申请退款金额',
  '费率备注',
] as const;

export const TRADE_BILL_SUMMARY_COLUMNS = ['总交易单数', '应结订单总金额', '退款总金额', '充值券退款总金额', '手续费总金额', '订单总金额', '申请退款总金额'] as const;

/** Largest bill we unpack; a day of a busy merchant is far below this. */
export const MAX_BILL_BYTES = 512 * 1024 * 1024;
/** Most detail lines one bill may hold. */
export const MAX_BILL_LINES = 5_000_000;

/** Free text (商品名称 and 商户数据包) is written unquoted and may hold commas; columns after it are found from the line's end. */
const FIRST_FREE_TEXT_COLUMN = '商品名称';

export function isGzip(file: Uint8Array): boolean {
  return file.length > 2 && file[0] === 0x1f && file[1] === 0x8b;
}

function cells(line: string): string[] {
  return line.split(',').map((cell) => (cell.startsWith('`') ? cell.slice(1) : cell).trim());
}

function broken(reason: string): never {
  throw unavailable(`bill unparseable: ${reason}`);
}

/**
 * The day's completed payments and succeeded refunds. A refund row is one in state REFUND
 * with a merchant refund number and 退款状态 SUCCESS; payment rows show "0" in the refund
 * number columns. A file without its summary, or whose count disagrees, is refused as truncated.
 */
export function parseTradeBill(file: Uint8Array): BillRecord[] {
  if (file.length === 0) return [];
  const bytes = isGzip(file) ? gunzipBill(file) : file;
  const lines = Buffer.from(bytes).toString('utf8').replace(/^\uFEFF/, '').split(/\r?\n/);
  const header = cells(lines[0] ?? '');
  const at = new Map(header.map((name, i) => [name, i]));
  const freeText = at.get(FIRST_FREE_TEXT_COLUMN) ?? header.length;
  const column = (name: string, fallback?: string): number => at.get(name) ?? (fallback ? at.get(fallback) : undefined) ?? broken(`no column ${name}`);
  const time = column('交易时间');
  const tradeNo = column('微信订单号');
  const payNo = column('商户订单号');
  const state = column('交易状态');
  const refundNo = column('商户退款单号');
  const refundState = column('退款状态');
  const orderAmount = column('订单金额', '应结订单金额');
  const refundAmount = column('申请退款金额', '退款金额');

  const records: BillRecord[] = [];
  let details = 0;
  for (let n = 1; n < lines.length; n++) {
    const line = lines[n]!;
    if (line.trim() === '') continue;
    if (line.startsWith('总交易单数')) return checkSummary(lines, n, details, records);
    if (++details > MAX_BILL_LINES) broken(`more than ${MAX_BILL_LINES} lines`);
    const fields = cells(line);
    if (fields.length < header.length) broken(`line ${n + 1} has ${fields.length} of ${header.length} columns`);
    const get = (i: number): string => (i < freeText ? fields[i]! : fields[fields.length - (header.length - i)]!);
    const at_ms = parseChinaDateTime(get(time)) ?? broken(`line ${n + 1}: bad 交易时间`);
    const amount = (i: number): number => yuanToFen(get(i)) ?? broken(`line ${n + 1}: bad amount ${get(i)}`);
    if (get(state) === 'SUCCESS') {
      records.push({ kind: 'payment', payNo: get(payNo), channelTradeNo: get(tradeNo), amount_fen: amount(orderAmount), at_ms });
    } else if (get(state) === 'REFUND' && get(refundState) === 'SUCCESS' && !['', '0'].includes(get(refundNo))) {
      records.push({ kind: 'refund', payNo: get(payNo), channelTradeNo: get(tradeNo), refundNo: get(refundNo), amount_fen: amount(refundAmount), at_ms });
    }
  }
  return broken('no summary lines (truncated?)');
}

export function gunzipBill(file: Uint8Array): Uint8Array {
  try {
    return gunzipSync(file, { maxOutputLength: MAX_BILL_BYTES });
  } catch (error) {
    return broken(`not a readable gzip file (${String(error)})`);
  }
}

function checkSummary(lines: string[], headerAt: number, details: number, records: BillRecord[]): BillRecord[] {
  const names = cells(lines[headerAt]!);
  const values = cells(lines[headerAt + 1] ?? '');
  const count = values[names.indexOf('总交易单数')];
  if (count === undefined || !/^\d+(\.0+)?$/.test(count) || Number.parseInt(count, 10) !== details) {
    broken(`summary counts ${count ?? 'nothing'} but the file has ${details} lines`);
  }
  return records;
}
