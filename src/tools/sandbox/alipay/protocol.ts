import { createSign, createVerify } from 'node:crypto';

/**
 * The sandbox's own reading of Alipay's wire rules. It deliberately shares no code with the
 * adapter (src/payments/channels/alipay), so a mistake on one side shows up as a failure
 * instead of agreeing with itself.
 */

const CHINA_OFFSET_MS = 8 * 3600_000;

/** Parameters except the excluded ones and empty values, sorted by key, joined raw as k=v&k=v. */
export function signContent(params: Readonly<Record<string, string>>, exclude: readonly string[]): string {
  return Object.keys(params)
    .filter((name) => !exclude.includes(name) && params[name] !== '')
    .sort()
    .map((name) => `${name}=${params[name]}`)
    .join('&');
}

export function rsa2Sign(content: string, privateKeyPem: string): string {
  return createSign('RSA-SHA256').update(content, 'utf8').sign(privateKeyPem, 'base64');
}

export function rsa2Verify(content: string, signature: string, publicKeyPem: string): boolean {
  try {
    return createVerify('RSA-SHA256').update(content, 'utf8').verify(publicKeyPem, signature, 'base64');
  } catch {
    return false;
  }
}

/**
 * The gateway's answer: `{"<method>_response":{…},"sign":"…"}`, the signature covering the
 * exact text of the _response value as written here.
 */
export function signedAnswer(method: string | undefined, body: Record<string, unknown>, alipayPrivateKeyPem: string): string {
  const key = method ? `${method.replaceAll('.', '_')}_response` : 'error_response';
  const inner = JSON.stringify(body);
  return `{"${key}":${inner},"sign":"${rsa2Sign(inner, alipayPrivateKeyPem)}"}`;
}

/** fen → "12.34". */
export function yuan(amount_fen: number): string {
  const sign = amount_fen < 0 ? '-' : '';
  const abs = Math.abs(amount_fen);
  return `${sign}${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, '0')}`;
}

/** "12.34" → 1234, or undefined when it is not an amount Alipay accepts (positive, at most two decimals). */
export function fenOf(text: unknown): number | undefined {
  const value = typeof text === 'number' ? String(text) : text;
  if (typeof value !== 'string') return undefined;
  const m = /^(\d{1,9})(?:\.(\d{1,2}))?$/.exec(value);
  if (!m) return undefined;
  return Number(m[1]) * 100 + Number((m[2] ?? '').padEnd(2, '0'));
}

/** 'yyyy-MM-dd HH:mm:ss' in China time; with millis for the fields Alipay writes that way (gmt_refund). */
export function chinaTime(at_ms: number, millis = false): string {
  const iso = new Date(at_ms + CHINA_OFFSET_MS).toISOString();
  return iso.slice(0, millis ? 23 : 19).replace('T', ' ');
}

export function parseChinaTime(text: unknown): number | undefined {
  if (typeof text !== 'string') return undefined;
  const m = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})$/.exec(text);
  if (!m) return undefined;
  const at = Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!) - CHINA_OFFSET_MS;
  return Number.isNaN(at) ? undefined : at;
}

/** A 16-digit number from a seed, for the ids Alipay hands out (buyer ids, notify ids). */
export function digitsFrom(seed: string, length: number): string {
  let hash = 1469598103934665603n; // FNV-1a, 64 bits
  for (const character of seed) hash = BigInt.asUintN(64, (hash ^ BigInt(character.charCodeAt(0))) * 1099511628211n);
  return hash.toString().padStart(20, '0').slice(-length);
}
