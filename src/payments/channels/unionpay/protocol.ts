import { createHash, createSign, createVerify, X509Certificate } from 'node:crypto';
import { CHINA_OFFSET_MS } from '../types.ts';

/**
 * UnionPay ACP 5.1.0 message rules shared by our adapter and the sandbox that plays
 * UnionPay: how a message is signed and checked, how it travels, and its time formats.
 * They follow the official acpsdk (SDKUtil.sign / validate / coverMap2String / parseQString,
 * CertUtil.verifyCertificate) so that either side would be accepted by the real SDK.
 */

export type AcpFields = Record<string, string>;

export const ACP_VERSION = '5.1.0';
export const ACP_ENCODING = 'UTF-8';
/** RSA with certificates; 11/12 (SHA-256/SM3 with a shared key) are not used. */
export const ACP_SIGN_METHOD_RSA = '01';
export const CURRENCY_CNY = '156';

/** The third @-part of the signing certificate's CN, as CertUtil.getIdentitiesFromCertficate reads it. */
export const UNIONPAY_CN_NAME = '中国银联股份有限公司';
/** What the test environment's signing certificate carries there instead (accepted only when the CN check is relaxed). */
export const UNIONPAY_TEST_CN_NAME = '00040000:SIGN';

export const RESP_SUCCESS = '00';
/** 03 timeout, 04 state unknown, 05 accepted: the result is not known yet, ask again. */
export const RESP_UNKNOWN = ['03', '04', '05'] as const;
/** 有缺陷的成功: the money moved, with a caveat (e.g. a different card than asked). */
export const RESP_DEFECTIVE_SUCCESS = 'A6';
export const RESP_BAD_SIGNATURE = '11';
export const RESP_DUPLICATE = '12';
export const RESP_NOT_FOUND = '34';

/** `k=v&…` over every field but `signature`, keys in Java TreeMap (UTF-16) order, values as they are. */
export function signingString(fields: AcpFields): string {
  return Object.keys(fields)
    .filter((name) => name !== 'signature')
    .sort()
    .map((name) => `${name}=${fields[name]}`)
    .join('&');
}

/** SHA-256 of the signing string as lowercase hex; the RSA signature is made over these hex characters. */
function digestHex(fields: AcpFields): string {
  return createHash('sha256').update(signingString(fields), 'utf8').digest('hex');
}

/**
 * Signs as AcpService.sign does: blank fields dropped and values trimmed first (filterBlank),
 * then SHA256withRSA over the digest's hex. certId is part of what is signed.
 */
export function signFields(fields: AcpFields, privateKeyPem: string, certId?: string): AcpFields {
  const kept: AcpFields = {};
  for (const [name, value] of Object.entries(fields)) if (value.trim() !== '') kept[name] = value.trim();
  if (certId !== undefined) kept.certId = certId;
  const signature = createSign('RSA-SHA256').update(digestHex(kept), 'utf8').sign(privateKeyPem, 'base64');
  return { ...kept, signature };
}

/** Checks a signature against a public key (a certificate's or a PEM key). */
export function signatureValid(fields: AcpFields, publicKey: X509Certificate['publicKey'] | string): boolean {
  const signature = fields.signature;
  if (!signature) return false;
  try {
    return createVerify('RSA-SHA256').update(digestHex(fields), 'utf8').verify(publicKey, signature, 'base64');
  } catch {
    return false;
  }
}

export interface TrustAnchors {
  rootCertPem: string;
  middleCertPem: string;
  /** true (production): the CN must name 中国银联股份有限公司; false also takes the test environment's 00040000:SIGN. */
  validateCnName: boolean;
}

/**
 * Verifies a UnionPay response or notification the way SDKUtil.validate does for 5.1.0:
 * the `signPubKeyCert` it carries must chain root → middle → cert, be within its validity,
 * and belong to UnionPay; only then is the signature checked with that certificate's key.
 * Returns why it failed, or undefined when the message is genuine.
 */
export function verifyFromUnionpay(fields: AcpFields, trust: TrustAnchors, now_ms: number): string | undefined {
  if (fields.version !== ACP_VERSION || fields.signMethod !== ACP_SIGN_METHOD_RSA) return 'unexpected version or signMethod';
  if (!fields.signature) return 'signature missing';
  if (!fields.signPubKeyCert) return 'signPubKeyCert missing';
  let cert: X509Certificate;
  let middle: X509Certificate;
  let root: X509Certificate;
  try {
    cert = new X509Certificate(fields.signPubKeyCert);
    middle = new X509Certificate(trust.middleCertPem);
    root = new X509Certificate(trust.rootCertPem);
  } catch {
    return 'certificate unreadable';
  }
  for (const certificate of [cert, middle, root]) {
    if (!(Date.parse(certificate.validFrom) <= now_ms && now_ms <= Date.parse(certificate.validTo))) return 'certificate outside its validity';
  }
  const chained =
    middle.ca && cert.checkIssued(middle) && cert.verify(middle.publicKey) && middle.checkIssued(root) && middle.verify(root.publicKey) && root.verify(root.publicKey);
  if (!chained) return 'certificate does not chain to the UnionPay root';
  const owner = cnIdentity(cert);
  if (owner !== UNIONPAY_CN_NAME && (trust.validateCnName || owner !== UNIONPAY_TEST_CN_NAME)) return 'certificate is not UnionPay’s';
  return signatureValid(fields, cert.publicKey) ? undefined : 'signature does not verify';
}

/** The third @-separated part of the subject CN (`041@Z…@中国银联股份有限公司@00000001`). */
export function cnIdentity(cert: X509Certificate): string {
  const cn = cert.subject.split('\n').find((line) => line.startsWith('CN='));
  return cn?.slice(3).split('@')[2] ?? '';
}

/** The certificate's serial number in decimal: what UnionPay calls certId. */
export function certIdOf(certPem: string): string {
  return BigInt('0x' + new X509Certificate(certPem).serialNumber).toString(10);
}

/** A request body, URL-encoded as the SDK's HttpClient posts it. */
export function formEncode(fields: AcpFields): string {
  return Object.entries(fields)
    .map(([name, value]) => `${encodeURIComponent(name)}=${encodeURIComponent(value)}`)
    .join('&');
}

/** A URL-encoded form (requests, notifications); a repeated key makes the message ambiguous and is refused. */
export function formDecode(body: string): AcpFields | undefined {
  const fields: AcpFields = {};
  for (const [name, value] of new URLSearchParams(body)) {
    if (Object.hasOwn(fields, name)) return undefined;
    fields[name] = value;
  }
  return fields;
}

/** A synchronous response body: raw `k=v&…`, not URL-encoded. */
export function responseEncode(fields: AcpFields): string {
  return Object.entries(fields)
    .map(([name, value]) => `${name}=${value}`)
    .join('&');
}

/**
 * Reads a response as SDKUtil.parseQString does: the first `=` ends a key, `&` ends a value
 * unless it sits inside `{…}` or `[…]` (nested fields such as reserved).
 */
export function responseDecode(body: string): AcpFields | undefined {
  const fields: AcpFields = {};
  let key: string | undefined;
  let token = '';
  let closer = '';
  const put = (): boolean => {
    const name = key ?? token;
    if (name.length === 0 || Object.hasOwn(fields, name)) return false;
    fields[name] = key === undefined ? '' : token;
    return true;
  };
  for (const ch of body) {
    if (key === undefined) {
      if (ch === '=') {
        key = token;
        token = '';
      } else token += ch;
      continue;
    }
    if (closer) {
      if (ch === closer) closer = '';
    } else if (ch === '{') closer = '}';
    else if (ch === '[') closer = ']';
    if (ch === '&' && !closer) {
      if (!put()) return undefined;
      key = undefined;
      token = '';
    } else token += ch;
  }
  if (body.length > 0 && !put()) return undefined;
  return fields;
}

/** YYYYMMDDhhmmss in China time (txnTime, payTimeout). */
export function chinaStamp(at_ms: number): string {
  return new Date(at_ms + CHINA_OFFSET_MS).toISOString().replace(/[-:T]/g, '').slice(0, 14);
}

/** The instant of a YYYYMMDDhhmmss China-time stamp, or undefined if it is not one. */
export function parseChinaStamp(stamp: string): number | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})$/.exec(stamp);
  if (!m) return undefined;
  const [y, mo, d, h, mi, s] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  const at = Date.UTC(y, mo - 1, d, h, mi, s);
  const back = new Date(at);
  if (back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d || h > 23 || mi > 59 || s > 59) return undefined;
  return at - CHINA_OFFSET_MS;
}

/**
 * A year-less MMDDhhmmss (traceTime, the bill's 交易传输时间) read against a full stamp known to
 * be near it and not after it: a December time read in January belongs to the year before.
 */
export function parseYearlessStamp(mmddhhmmss: string, yearOf: string): number | undefined {
  if (!/^\d{10}$/.test(mmddhhmmss) || !/^\d{4}/.test(yearOf)) return undefined;
  let year = Number(yearOf.slice(0, 4));
  if (mmddhhmmss.slice(0, 4) > yearOf.slice(4, 8) && /^\d{8}/.test(yearOf)) year -= 1;
  return parseChinaStamp(`${year}${mmddhhmmss}`);
}

/** Like parseYearlessStamp, for a time expected at or after the reference (traceTime after txnTime). */
export function parseYearlessStampAfter(mmddhhmmss: string, reference: string): number | undefined {
  if (!/^\d{10}$/.test(mmddhhmmss) || !/^\d{8}/.test(reference)) return undefined;
  let year = Number(reference.slice(0, 4));
  if (mmddhhmmss.slice(0, 4) < reference.slice(4, 8)) year += 1;
  return parseChinaStamp(`${year}${mmddhhmmss}`);
}

/** An amount in fen as UnionPay writes it (digits only, no sign or decimals). */
export function parseFen(text: string | undefined): number | undefined {
  if (text === undefined || !/^\d{1,15}$/.test(text)) return undefined;
  const fen = Number(text);
  return Number.isSafeInteger(fen) ? fen : undefined;
}
