import { unzipSync } from 'fflate';
import iconv from 'iconv-lite';
import { AppError } from '../../../platform/errors.ts';
import type { BillRecord } from '../types.ts';
import { parseChinaTime, yuanToFen } from './format.ts';

/**
 * Alipay's trade bill: a zip holding `<pid>_<yyyyMMdd>_业务明细.csv` (one row per payment or
 * refund) and `…_业务明细(汇总).csv` (totals, not read here), both GBK, each with `#` comment
 * lines before and after the rows. Values carry a trailing tab so spreadsheets keep long
 * numbers as text. Columns are found by header name, since Alipay has added columns before.
 */

/** Most rows read from one day's file; a larger file means something is wrong, not a busy day. */
export const MAX_BILL_ROWS = 1_000_000;
const DETAIL_SUFFIX = '业务明细.csv';
const SUMMARY_MARK = '汇总';

const COLUMN = {
  tradeNo: '支付宝交易号',
  payNo: '商户订单号',
  kind: '业务类型',
  finishedAt: '完成时间',
  orderAmount: '订单金额（元）',
  refundNo: '退款批次号/请求号',
} as const;

export function parseAlipayBill(file: Uint8Array): BillRecord[] {
  const detail = detailFile(file);
  const lines = iconv.decode(Buffer.from(detail), 'gbk').split(/\r?\n/);
  let header: string[] | undefined;
  const records: BillRecord[] = [];
  for (const line of lines) {
    if (line.trim() === '' || line.startsWith('#')) continue;
    const cells = splitCsvLine(line).map((cell) => cell.trim());
    if (!header) {
      header = cells;
      for (const name of Object.values(COLUMN)) if (!header.includes(name)) throw unreadable(`the bill has no column ${name}`);
      continue;
    }
    if (records.length >= MAX_BILL_ROWS) throw unreadable(`the bill has more than ${MAX_BILL_ROWS} rows`);
    const cell = (name: string) => cells[header!.indexOf(name)] ?? '';
    const kind = cell(COLUMN.kind);
    if (kind !== '交易' && kind !== '退款') continue;
    const record: BillRecord = {
      kind: kind === '交易' ? 'payment' : 'refund',
      payNo: cell(COLUMN.payNo),
      channelTradeNo: cell(COLUMN.tradeNo),
      // Refund rows show the amount as negative yuan; the kind already says the direction.
      amount_fen: Math.abs(yuanToFen(cell(COLUMN.orderAmount), COLUMN.orderAmount)),
      at_ms: parseChinaTime(cell(COLUMN.finishedAt), COLUMN.finishedAt),
    };
    if (record.kind === 'refund') record.refundNo = cell(COLUMN.refundNo);
    records.push(record);
  }
  if (!header) throw unreadable('the bill has no header line');
  return records;
}

function detailFile(file: Uint8Array): Uint8Array {
  let entries: Record<string, Uint8Array>;
  try {
    entries = unzipSync(file);
  } catch (error) {
    throw unreadable(`the bill is not a zip file (${String(error)})`);
  }
  // Alipay writes the names in GBK without the zip's UTF-8 flag; the unzipper then reads them as Latin-1.
  const named = Object.entries(entries).map(([name, data]) => ({ name: readableName(name), data }));
  const details = named.filter((e) => e.name.endsWith(DETAIL_SUFFIX) && !e.name.includes(SUMMARY_MARK));
  if (details.length !== 1) throw unreadable(`the bill zip holds ${details.length} detail files (${named.map((e) => e.name).join(', ')})`);
  return details[0]!.data;
}

function readableName(name: string): string {
  if (name.includes(DETAIL_SUFFIX)) return name;
  if ([...name].every((character) => character.charCodeAt(0) < 256)) return iconv.decode(Buffer.from(name, 'latin1'), 'gbk');
  return name;
}

/** One CSV line; Alipay quotes nothing in practice, but a quoted cell with commas is read right. */
function splitCsvLine(line: string): string[] {
  const cells: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const character = line[i]!;
    if (quoted) {
      if (character === '"' && line[i + 1] === '"') (cell += '"'), i++;
      else if (character === '"') quoted = false;
      else cell += character;
    } else if (character === '"' && cell.trim() === '') {
      quoted = true;
      cell = '';
    } else if (character === ',') {
      cells.push(cell);
      cell = '';
    } else cell += character;
  }
  cells.push(cell);
  return cells;
}

function unreadable(message: string): AppError {
  return new AppError('channel_unavailable', { message: `Alipay bill: ${message}` });
}
