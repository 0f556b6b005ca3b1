import { deflateSync, inflateSync } from 'node:zlib';
import { unzipSync, zipSync } from 'fflate';
import iconv from 'iconv-lite';
import type { BillRecord } from '../types.ts';
import { parseFen, parseYearlessStamp } from './protocol.ts';

/**
 * The merchant's daily file (对账文件, fileType 00): fileTransfer.do answers with fileContent,
 * which is base64 of a DEFLATE (zlib) stream of a zip (AcpService.deCodeFileContent). Inside,
 * `INN<YYMMDD>88ZM_<merId>` holds one fixed-width GBK line per transaction, fields separated by
 * one space, with the widths the official demo's parseZMFile uses. Field names follow
 * 《全渠道平台接入接口规范 第3部分 文件接口》 as third-party code quotes them; the last two
 * (32 and 98 wide) are read here as the original order number and a reserved tail (?).
 */
export const ZM_FIELDS = [
  ['tradeCode', 3], // 交易代码
  ['acqInsCode', 11], // 代理机构标识码
  ['sendInsCode', 11], // 发送机构标识码
  ['traceNo', 6], // 系统跟踪号
  ['txnTime', 10], // 交易传输时间 MMDDhhmmss
  ['accNo', 19], // 帐号
  ['txnAmt', 12], // 交易金额 (fen)
  ['merCatCode', 4], // 商户类别
  ['termType', 2], // 终端类型
  ['queryId', 21], // 查询流水号
  ['oldPayType', 2], // 支付方式（旧）
  ['orderId', 32], // 商户订单号
  ['payCardType', 2], // 支付卡类型
  ['origTraceNo', 6], // 原始交易的系统跟踪号
  ['origTxnTime', 10], // 原始交易日期时间
  ['merFee', 13], // 商户手续费
  ['settleAmt', 13], // 结算金额
  ['payType', 4], // 支付方式
  ['groupMerId', 15], // 集团商户代码
  ['txnType', 2], // 交易类型
  ['txnSubType', 2], // 交易子类
  ['bizType', 6], // 业务类型
  ['accType', 2], // 帐号类型
  ['billType', 4], // 账单类型
  ['billNo', 32], // 账单号码
  ['interactMode', 1], // 交互方式
  ['origQryId', 21], // 原交易查询流水号
  ['merId', 15], // 商户代码
  ['splitMode', 1], // 分账入账方式
  ['subMerId', 15], // 二级商户代码
  ['subMerAbbr', 32], // 二级商户简称
  ['subMerAmt', 13], // 二级商户分账入账金额
  ['settleNetAmt', 13], // 清算净额
  ['termId', 8], // 终端号
  ['merReserved', 32], // 商户自定义域
  ['discountAmt', 13], // 优惠金额
  ['invoiceAmt', 13], // 发票金额
  ['installmentFee', 12], // 分期付款附加手续费
  ['installmentNum', 2], // 分期付款期数
  ['tradeMedia', 1], // 交易介质
  ['origOrderId', 32], // 原始交易订单号 (?)
  ['reserved', 98], // 保留使用
] as const;

export type ZmField = (typeof ZM_FIELDS)[number][0];
export type ZmRow = Partial<Record<ZmField, string>>;

/** Most lines read from one file: a day of one merchant, with room to spare. */
export const MAX_BILL_LINES = 1_000_000;
/** Largest unpacked bill accepted, so a hostile or broken file cannot exhaust memory. */
export const MAX_BILL_BYTES = 512 * 1024 * 1024;

/** Transaction codes of consume and refund lines (?): the parser goes by txnType instead. */
export const TRADE_CODE_CONSUME = 'S22';
export const TRADE_CODE_REFUND = 'S30';

/** One line: every field padded to its width (amounts are zero-padded by the writer), one space between. */
export function zmLine(row: ZmRow): Buffer {
  const parts = ZM_FIELDS.map(([name, width]) => {
    const bytes = iconv.encode(row[name] ?? '', 'gbk');
    if (bytes.length > width) throw new Error(`ZM field ${name} is wider than ${width} bytes`);
    return Buffer.concat([bytes, Buffer.alloc(width - bytes.length, ' ')]);
  });
  const line: Buffer[] = [];
  parts.forEach((part, i) => line.push(...(i > 0 ? [Buffer.from(' '), part] : [part])));
  return Buffer.concat([...line, Buffer.from('\r\n')]);
}

export function readZmLine(line: Buffer): ZmRow {
  const row: ZmRow = {};
  let at = 0;
  for (const [name, width] of ZM_FIELDS) {
    if (at >= line.length) break;
    row[name] = iconv.decode(line.subarray(at, Math.min(at + width, line.length)), 'gbk').trim();
    at += width + 1;
  }
  return row;
}

/** `INN<YYMMDD>88ZM_<merId>` and its (empty here) error-file sibling ZME, zipped as `<merId>_<YYYYMMDD>.zip`. */
export function zmEntryName(date: string, merId: string, kind: 'ZM' | 'ZME'): string {
  return `INN${date.replaceAll('-', '').slice(2)}88${kind}_${merId}`;
}

export function billZip(date: string, merId: string, rows: readonly ZmRow[]): { fileName: string; zip: Uint8Array } {
  const zm = Buffer.concat(rows.map(zmLine));
  const zip = zipSync({ [zmEntryName(date, merId, 'ZM')]: zm, [zmEntryName(date, merId, 'ZME')]: new Uint8Array() });
  return { fileName: `${merId}_${date.replaceAll('-', '')}.zip`, zip };
}

/** fileContent as UnionPay sends it: base64 of zlib DEFLATE of the file (AcpService.enCodeFileContent). */
export function encodeFileContent(file: Uint8Array): string {
  return deflateSync(file).toString('base64');
}

export function decodeFileContent(fileContent: string): Uint8Array {
  return inflateSync(Buffer.from(fileContent, 'base64'), { maxOutputLength: MAX_BILL_BYTES });
}

/**
 * Reads the ZM file out of the day's zip. A line that cannot be read whole (amount, numbers,
 * time) is an error, not a row to skip: reconciliation must not miss money silently.
 */
export function parseZmBill(zip: Uint8Array): BillRecord[] {
  const entries = unzipSync(zip, { filter: (f) => /^INN\d{6}\d{2}ZM_/.test(f.name.split('/').pop() ?? '') && f.originalSize <= MAX_BILL_BYTES });
  const names = Object.keys(entries);
  if (names.length !== 1) throw new Error(`the bill holds ${names.length} ZM files, expected one`);
  const name = names[0]!;
  const day = /INN(\d{6})/.exec(name)![1]!;
  const fileDate = `20${day}`;
  const data = Buffer.from(entries[name]!);
  const records: BillRecord[] = [];
  let start = 0;
  for (let n = 0; start < data.length; n++) {
    if (n >= MAX_BILL_LINES) throw new Error(`the bill has more than ${MAX_BILL_LINES} lines`);
    let end = data.indexOf(0x0a, start);
    if (end < 0) end = data.length;
    const line = data.subarray(start, end > start && data[end - 1] === 0x0d ? end - 1 : end);
    start = end + 1;
    if (line.toString('latin1').trim() === '') continue;
    records.push(toRecord(readZmLine(line), fileDate, n + 1));
  }
  return records;
}

function toRecord(row: ZmRow, fileDate: string, lineNo: number): BillRecord {
  const amount_fen = parseFen(row.txnAmt);
  const at_ms = parseYearlessStamp(row.txnTime ?? '', fileDate);
  if (amount_fen === undefined || at_ms === undefined || !row.orderId || !row.queryId) {
    throw new Error(`bill line ${lineNo} cannot be read (amount, time, order or query id)`);
  }
  // A sub-order of a split consume (合单) is its own line, our sub-order number in 商户自定义域 (?).
  const subOrderNo = row.subMerId && row.merReserved ? row.merReserved : undefined;
  if (row.txnType === '01') {
    return { kind: 'payment', payNo: subOrderNo ?? row.orderId, channelTradeNo: row.queryId, amount_fen, at_ms };
  }
  // 04 refund (退货) and 31 same-day revoke (撤销) both give money back; their orderId is the refund's own number.
  if (row.txnType === '04' || row.txnType === '31') {
    if (!row.origQryId) throw new Error(`bill line ${lineNo} is a refund without the original query id`);
    return { kind: 'refund', payNo: subOrderNo ?? row.origOrderId ?? '', channelTradeNo: row.origQryId, refundNo: row.orderId, amount_fen, at_ms };
  }
  throw new Error(`bill line ${lineNo} has an unknown txnType ${row.txnType ?? ''}`);
}
