import { createDecipheriv, createPrivateKey, createPublicKey, createSign, createVerify, randomBytes, X509Certificate, type KeyObject } from 'node:crypto';
import { CHINA_OFFSET_MS } from '../types.ts';

/**
 * WeChat Pay API v3 on the merchant's side: request signatures, verification of what the
 * platform signs (responses and notifications), the AES-GCM envelope of notifications,
 * and the channel's time and amount formats.
 */

export const AUTH_SCHEMA = 'WECHATPAY2-SHA256-RSA2048';
/** WeChat rejects, and asks merchants to reject, signatures whose timestamp is further off than this. */
export const MAX_CLOCK_SKEW_S = 300;
const GCM_TAG_BYTES = 16;
const API_V3_KEY_BYTES = 32;

/** nonce_str as WeChat's own SDKs make it: 32 characters, upper-case hex. */
export function newNonce(): string {
  return randomBytes(16).toString('hex').toUpperCase();
}

export function privateKey(pem: string): KeyObject {
  return createPrivateKey(pem);
}

/**
 * The platform's verification keys by serial. A `PUB_KEY_ID_…` entry is a bare public key; a
 * certificate-mode entry may give the platform certificate itself, whose serial must then be
 * the one it is filed under (the serial is what Wechatpay-Serial names).
 */
export function platformKeyRing(keys: ReadonlyArray<{ serial: string; publicKeyPem: string }>): Map<string, KeyObject> {
  const ring = new Map<string, KeyObject>();
  for (const { serial, publicKeyPem } of keys) {
    if (publicKeyPem.includes('BEGIN CERTIFICATE')) {
      const certificate = new X509Certificate(publicKeyPem);
      if (certificate.serialNumber.toUpperCase() !== serial.toUpperCase()) {
        throw new Error(`WeChat Pay platform certificate ${certificate.serialNumber} is filed under serial ${serial}`);
      }
      ring.set(serial.toUpperCase(), certificate.publicKey);
    } else {
      ring.set(serial.toUpperCase(), createPublicKey(publicKeyPem));
    }
  }
  return ring;
}

export function signMessage(message: string, key: KeyObject): string {
  return createSign('RSA-SHA256').update(message, 'utf8').sign(key, 'base64');
}

function verifyMessage(message: string, signature: string, key: KeyObject): boolean {
  try {
    return createVerify('RSA-SHA256').update(message, 'utf8').verify(key, signature, 'base64');
  } catch {
    return false;
  }
}

/** The Authorization header of a request: five lines, each ending in a newline, signed with the merchant key. */
export function authorization(input: {
  mchId: string;
  serialNo: string;
  key: KeyObject;
  method: string;
  pathWithQuery: string;
  body: string;
  timestamp_s: number;
}): string {
  const nonce = newNonce();
  const message = `${input.method}\n${input.pathWithQuery}\n${input.timestamp_s}\n${nonce}\n${input.body}\n`;
  const signature = signMessage(message, input.key);
  return `${AUTH_SCHEMA} mchid="${input.mchId}",nonce_str="${nonce}",timestamp="${input.timestamp_s}",serial_no="${input.serialNo}",signature="${signature}"`;
}

/**
 * Checks the platform's signature on a response or notification body. Returns why it fails,
 * or undefined when it holds. WeChat sends deliberately mis-signed probes
 * (`WECHATPAY/SIGNTEST/…`); they fail here like any other bad signature.
 */
export function platformSignatureProblem(
  ring: ReadonlyMap<string, KeyObject>,
  headers: { timestamp?: string | null; nonce?: string | null; signature?: string | null; serial?: string | null },
  body: string,
  now_ms: number,
): string | undefined {
  const { timestamp, nonce, signature, serial } = headers;
  if (!timestamp || !nonce || !signature || !serial) return 'Wechatpay-Timestamp, -Nonce, -Signature and -Serial are required';
  const key = ring.get(serial.toUpperCase());
  if (!key) return `unknown platform serial ${serial}`;
  if (!/^\d{1,12}$/.test(timestamp)) return 'malformed Wechatpay-Timestamp';
  if (Math.abs(Math.floor(now_ms / 1000) - Number(timestamp)) > MAX_CLOCK_SKEW_S) return 'Wechatpay-Timestamp is too far from now';
  if (!verifyMessage(`${timestamp}\n${nonce}\n${body}\n`, signature, key)) return 'bad signature';
  return undefined;
}

export interface EncryptedResource {
  algorithm: string;
  ciphertext: string;
  nonce: string;
  associated_data?: string;
}

/** Opens a notification's resource; the last 16 bytes of the ciphertext are the GCM tag. Throws when it does not authenticate. */
export function decryptResource(apiV3Key: string, resource: EncryptedResource): string {
  if (resource.algorithm !== 'AEAD_AES_256_GCM') throw new Error(`unsupported algorithm ${resource.algorithm}`);
  const data = Buffer.from(resource.ciphertext, 'base64');
  if (data.length <= GCM_TAG_BYTES) throw new Error('ciphertext too short');
  const decipher = createDecipheriv('aes-256-gcm', apiV3KeyBytes(apiV3Key), Buffer.from(resource.nonce, 'utf8'));
  decipher.setAuthTag(data.subarray(data.length - GCM_TAG_BYTES));
  decipher.setAAD(Buffer.from(resource.associated_data ?? '', 'utf8'));
  return Buffer.concat([decipher.update(data.subarray(0, data.length - GCM_TAG_BYTES)), decipher.final()]).toString('utf8');
}

export function apiV3KeyBytes(apiV3Key: string): Buffer {
  const bytes = Buffer.from(apiV3Key, 'utf8');
  if (bytes.length !== API_V3_KEY_BYTES) throw new Error(`the APIv3 key must be ${API_V3_KEY_BYTES} bytes, got ${bytes.length}`);
  return bytes;
}

/** RFC 3339 in China time, as WeChat writes and wants it: 2018-06-08T10:34:56+08:00. */
export function chinaRfc3339(at_ms: number): string {
  return new Date(at_ms + CHINA_OFFSET_MS).toISOString().slice(0, 19) + '+08:00';
}

/** Parses an RFC 3339 instant with an explicit offset; undefined when it is not one. */
export function parseRfc3339(text: string): number | undefined {
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/.test(text)) return undefined;
  const at_ms = Date.parse(text);
  return Number.isFinite(at_ms) ? at_ms : undefined;
}

/** 'YYYY-MM-DD HH:mm:ss' in China time (the bill's 交易时间) to an instant. */
export function parseChinaDateTime(text: string): number | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})$/.exec(text);
  if (!m) return undefined;
  const [y, mo, d, h, mi, s] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  return Date.UTC(y, mo - 1, d, h, mi, s) - CHINA_OFFSET_MS;
}

/** "12.34" yuan to 1234 fen by string, never through a float. Undefined when it is not a yuan amount. */
export function yuanToFen(text: string): number | undefined {
  const m = /^(-?)(\d{1,13})(?:\.(\d{1,2}))?$/.exec(text);
  if (!m) return undefined;
  const fen = Number(m[2]) * 100 + Number((m[3] ?? '').padEnd(2, '0'));
  return m[1] === '-' && fen !== 0 ? -fen : fen;
}
