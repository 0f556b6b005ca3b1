import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import iconv from 'iconv-lite';
import { CHINA_OFFSET_MS } from '../types.ts';

/**
 * CCB LongPay (龙支付) protocol facts shared by our adapter and the sandbox that plays the
 * bank. CCB publishes no public documentation; everything here follows third-party SDKs
 * (see docs/channels/ccb.md for which parts are unverified).
 */

/** 聚合扫码: the gateway answers with a JSON PAYURL whose GET answers the QR content. */
export const TXCODE_QR = '530550';
/** 网上银行 B2C payment page, used for the page and h5 methods. */
export const TXCODE_PAGE = '520100';
export const CURCODE_CNY = '01';
/** RETURNTYPE=3: the 530550 answer is JSON carrying the QR string. */
export const RETURNTYPE_QR_JSON = '3';

/** Request fields in the order the MAC string takes them; PUB is hashed, never sent. */
export const QR_MAC_FIELDS = ['MERCHANTID', 'POSID', 'BRANCHID', 'ORDERID', 'PAYMENT', 'CURCODE', 'TXCODE', 'REMARK1', 'REMARK2', 'RETURNTYPE', 'TIMEOUT', 'PUB'] as const;
export const PAGE_MAC_FIELDS = [
  'MERCHANTID', 'POSID', 'BRANCHID', 'ORDERID', 'PAYMENT', 'CURCODE', 'TXCODE', 'REMARK1', 'REMARK2',
  'TYPE', 'PUB', 'GATEWAY', 'CLIENTIP', 'REGINFO', 'PROINFO', 'REFERER', 'TIMEOUT',
] as const;

/**
 * Stand-ins for the notification and return URLs a real CCB merchant sets once in the
 * 商户服务平台 (they are not request fields there). Sent only when the settings say so.
 */
export const SANDBOX_NOTIFY_FIELD = 'SANDBOX_NOTIFY_URL';
export const SANDBOX_RETURN_FIELD = 'SANDBOX_RETURN_URL';

export function macFieldsFor(txcode: string): readonly string[] {
  return txcode === TXCODE_QR ? QR_MAC_FIELDS : PAGE_MAC_FIELDS;
}

/** Lowercase hex MD5 over `K=V&K=V…` in the fixed order, PUB included as the shared secret. */
export function requestMac(fields: Readonly<Record<string, string>>, pub: string): string {
  const txcode = fields.TXCODE ?? '';
  const text = macFieldsFor(txcode)
    .map((name) => `${name}=${name === 'PUB' ? pub : (fields[name] ?? '')}`)
    .join('&');
  return createHash('md5').update(text, 'utf8').digest('hex');
}

/** Notification fields always in the signed string, in this order. */
const NOTIFY_SIGNED_ALWAYS = ['POSID', 'BRANCHID', 'ORDERID', 'PAYMENT', 'CURCODE', 'REMARK1', 'REMARK2', 'ACC_TYPE', 'SUCCESS'] as const;
/** Present when the request carried TYPE=1 (anti-phishing interface); signed even when empty. */
const NOTIFY_SIGNED_IF_PRESENT = ['TYPE', 'REFERER', 'CLIENTIP'] as const;
/** Signed only when the bank sent a non-empty value. */
const NOTIFY_SIGNED_IF_FILLED = ['ACCDATE', 'USRMSG', 'INSTALLNUM', 'ERRMSG', 'USRINFO', 'DISCOUNT'] as const;

/** The string CCB signs (MD5withRSA) in a payment notification. */
export function notificationSignedText(fields: URLSearchParams): string {
  const parts: string[] = [];
  for (const name of NOTIFY_SIGNED_ALWAYS) parts.push(`${name}=${(fields.get(name) ?? '').trim()}`);
  for (const name of NOTIFY_SIGNED_IF_PRESENT) if (fields.has(name)) parts.push(`${name}=${(fields.get(name) ?? '').trim()}`);
  for (const name of NOTIFY_SIGNED_IF_FILLED) {
    const value = (fields.get(name) ?? '').trim();
    if (value !== '') parts.push(`${name}=${value}`);
  }
  return parts.join('&');
}

/** CCB hands its public key out as hex of the X.509 SubjectPublicKeyInfo DER; PEM is accepted too. */
export function ccbPublicKeyObject(key: string): KeyObject {
  const trimmed = key.trim();
  if (trimmed.startsWith('-----BEGIN')) return createPublicKey(trimmed);
  if (!/^[0-9a-fA-F]+$/.test(trimmed)) throw new Error('the CCB public key is neither PEM nor hex');
  return createPublicKey({ key: Buffer.from(trimmed, 'hex'), format: 'der', type: 'spki' });
}

/** PUB: the last 30 hex characters of the public key's DER, lowercase. */
export function pubOf(key: KeyObject): string {
  return key.export({ type: 'spki', format: 'der' }).toString('hex').slice(-30).toLowerCase();
}

// ---- amounts: yuan with two decimals on the wire, integer fen everywhere else

const YUAN = /^(-?)(\d{1,13})(?:\.(\d{1,2}))?$/;

/** "12.34" → 1234, by string so no float ever touches money. Throws on anything else. */
export function yuanToFen(text: string): number {
  const match = YUAN.exec(text.trim());
  if (!match) throw new Error(`not an amount in yuan: ${JSON.stringify(text)}`);
  const fen = Number(match[2]) * 100 + Number((match[3] ?? '').padEnd(2, '0'));
  return match[1] === '-' ? -fen : fen;
}

export function fenToYuan(amount_fen: number): string {
  if (!Number.isSafeInteger(amount_fen)) throw new Error(`amount must be integer fen, got ${amount_fen}`);
  const sign = amount_fen < 0 ? '-' : '';
  const abs = Math.abs(amount_fen);
  return `${sign}${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, '0')}`;
}

// ---- China time

/** YYYYMMDDHHmmss in China time. */
export function chinaStamp(at_ms: number): string {
  return new Date(at_ms + CHINA_OFFSET_MS).toISOString().replace(/[-:T]/g, '').slice(0, 14);
}

/** 'YYYY-MM-DD HH:mm:ss' in China time, as the bill file writes it. */
export function chinaDateTime(at_ms: number): string {
  return new Date(at_ms + CHINA_OFFSET_MS).toISOString().slice(0, 19).replace('T', ' ');
}

/** Reads YYYYMMDDHHmmss or 'YYYY-MM-DD HH:mm:ss' (China time); undefined when it is neither. */
export function parseChinaTime(text: string): number | undefined {
  const digits = text.replace(/[-: /]/g, '');
  const match = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})$/.exec(digits);
  if (!match) return undefined;
  const [, y, mo, d, h, mi, s] = match.map(Number) as [number, number, number, number, number, number, number];
  const at_ms = Date.UTC(y, mo - 1, d, h, mi, s) - CHINA_OFFSET_MS;
  return Number.isFinite(at_ms) ? at_ms : undefined;
}

// ---- 外联平台 (EBS) XML over HTTP: form field requestXml, GB18030 both ways

export const EBS_CHARSET = 'gb18030';
export const EBS_LANGUAGE = 'CN';

/** RETURN_CODE values. Only `ok` and `wrongPassword` were seen in real answers; the rest are ours. */
export const EBS_CODES = {
  ok: '000000',
  wrongPassword: '0130Z110C054',
  noRecord: '0250E0200001',
  badRequest: '0250E0100001',
  unknownTransaction: '0250E0100002',
  notRefundable: '0250E0300001',
  refundExceeds: '0250E0300002',
  refundFailed: '0250E0300003',
  notClosable: '0250E0400001',
} as const;

/** 5W1002 ORDER_STATUS: 0 failed, 1 succeeded, 2 and 5 awaiting the bank, 3 partly refunded, 4 fully refunded. */
export const ORDER_STATUS = { failed: '0', succeeded: '1', pending: '2', partlyRefunded: '3', fullyRefunded: '4', pendingBank: '5' } as const;

/** There is no close transaction at CCB (orders lapse at TIMEOUT); the sandbox offers this one. */
export const TX_SANDBOX_CLOSE = 'SANDBOX_CLOSE';
export const TX_QUERY_PAYMENTS = '5W1002';
export const TX_QUERY_REFUNDS = '5W1003';
export const TX_REFUND = '5W1004';
export const TX_BILL_FILE = '5W1005';
export const TX_DOWNLOAD_FILE = '6W0111';
/** Where the 外联平台 client puts a downloaded merchant bill (商户流水). */
export const BILL_FILE_PATH = 'merchant/shls';

export type XmlFields = ReadonlyArray<readonly [string, string | ReadonlyArray<readonly [string, string]>]>;

function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (character) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[character]!);
}

function unescapeXml(text: string): string {
  return text.replace(/&(amp|lt|gt|quot|apos);/g, (_, e: string) => ({ amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" })[e]!);
}

function xmlLines(fields: XmlFields, indent: string): string[] {
  const lines: string[] = [];
  for (const [name, value] of fields) {
    if (typeof value === 'string') lines.push(`${indent}<${name}>${escapeXml(value)}</${name}>`);
    else lines.push(`${indent}<${name}>`, ...xmlLines(value, indent + '  '), `${indent}</${name}>`);
  }
  return lines;
}

/** A `<TX>` document: head fields, then TX_INFO with its fields (a LIST entry is a nested group). */
export function ebsXml(head: XmlFields, info: XmlFields): string {
  return [
    `<?xml version="1.0" encoding="GB18030" standalone="yes" ?>`,
    '<TX>',
    ...xmlLines(head, '  '),
    '  <TX_INFO>',
    ...xmlLines(info, '    '),
    '  </TX_INFO>',
    '</TX>',
  ].join('\n');
}

export interface EbsDocument {
  head: Record<string, string>;
  info: Record<string, string>;
  list: Array<Record<string, string>>;
}

const LEAF = /<([A-Za-z_][\w.-]*)\s*(?:\/>|>([^<]*)<\/\1\s*>)/g;

function leaves(xml: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const match of xml.matchAll(LEAF)) out[match[1]!] = unescapeXml((match[2] ?? '').trim());
  return out;
}

/** Reads the flat `<TX>` shape both sides use. Throws when there is no TX element. */
export function parseEbsXml(xml: string): EbsDocument {
  const tx = /<TX>([\s\S]*)<\/TX>/.exec(xml);
  if (!tx) throw new Error('no <TX> element');
  const infoMatch = /<TX_INFO>([\s\S]*)<\/TX_INFO>/.exec(tx[1]!);
  const headXml = infoMatch ? tx[1]!.replace(infoMatch[0], '') : tx[1]!;
  const infoXml = infoMatch?.[1] ?? '';
  const list = [...infoXml.matchAll(/<LIST>([\s\S]*?)<\/LIST>/g)].map((m) => leaves(m[1]!));
  return { head: leaves(headXml), info: leaves(infoXml.replace(/<LIST>[\s\S]*?<\/LIST>/g, '')), list };
}

/** application/x-www-form-urlencoded of one field whose value is percent-encoded GB18030 bytes. */
export function encodeRequestXmlForm(xml: string): string {
  return `requestXml=${percentEncode(iconv.encode(xml, EBS_CHARSET))}`;
}

/** The XML inside a `requestXml=` form body, decoded from GB18030. */
export function decodeRequestXmlForm(body: string): string | undefined {
  for (const pair of body.split('&')) {
    const at = pair.indexOf('=');
    if (at < 0 || pair.slice(0, at) !== 'requestXml') continue;
    return iconv.decode(percentDecode(pair.slice(at + 1)), EBS_CHARSET);
  }
  return undefined;
}

export function encodeGb18030(text: string): Buffer {
  return iconv.encode(text, EBS_CHARSET);
}

export function decodeGb18030(bytes: Uint8Array): string {
  return iconv.decode(Buffer.from(bytes), EBS_CHARSET);
}

function percentEncode(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) {
    const character = String.fromCharCode(b);
    out += /[A-Za-z0-9*\-._]/.test(character) ? character : b === 0x20 ? '+' : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

function percentDecode(text: string): Buffer {
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const character = text[i]!;
    if (character === '+') bytes.push(0x20);
    else if (character === '%' && /^[0-9a-fA-F]{2}$/.test(text.slice(i + 1, i + 3))) {
      bytes.push(parseInt(text.slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(...Buffer.from(character, 'utf8'));
  }
  return Buffer.from(bytes);
}
