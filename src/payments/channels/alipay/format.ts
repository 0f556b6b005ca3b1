import { AppError } from '../../../platform/errors.ts';
import { assertFen } from '../../../platform/money.ts';
import { CHINA_OFFSET_MS } from '../types.ts';

/**
 * Alipay's two value formats: amounts in yuan as decimal strings, times as
 * 'yyyy-MM-dd HH:mm:ss' in China time. Both are converted by string and integer arithmetic,
 * never through floats, so "0.29" is 29 fen and not 28.999….
 */

const YUAN = /^(-?)(\d{1,13})(?:\.(\d{1,2}))?$/;
const CHINA_TIME = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,3}))?$/;

/** 1234 → "12.34"; Alipay takes two decimals. */
export function fenToYuan(amount_fen: number): string {
  assertFen(amount_fen, 'amount');
  const sign = amount_fen < 0 ? '-' : '';
  const abs = Math.abs(amount_fen);
  return `${sign}${Math.trunc(abs / 100)}.${String(abs % 100).padStart(2, '0')}`;
}

/** "12.34" → 1234. A value Alipay would never send is an answer we cannot read. */
export function yuanToFen(yuan: string, field: string): number {
  const match = YUAN.exec(yuan.trim());
  if (!match) throw unreadable(field, yuan);
  const fen = Number(match[2]) * 100 + Number((match[3] ?? '').padEnd(2, '0'));
  return assertFen(match[1] === '-' ? -fen : fen, field);
}

/** An instant as Alipay writes it: China time, to the second (later parts dropped). */
export function chinaTime(at_ms: number): string {
  return new Date(at_ms + CHINA_OFFSET_MS).toISOString().slice(0, 19).replace('T', ' ');
}

/** 'yyyy-MM-dd HH:mm:ss[.SSS]' in China time → epoch ms (gmt_refund carries milliseconds). */
export function parseChinaTime(text: string, field: string): number {
  const m = CHINA_TIME.exec(text.trim());
  if (!m) throw unreadable(field, text);
  const [, y, mo, d, h, mi, s, ms] = m;
  return Date.UTC(+y!, +mo! - 1, +d!, +h!, +mi!, +s!, Number((ms ?? '0').padEnd(3, '0'))) - CHINA_OFFSET_MS;
}

function unreadable(field: string, value: string): AppError {
  return new AppError('channel_unavailable', { message: `Alipay sent an unreadable ${field}`, details: { field, value: value.slice(0, 64) } });
}
