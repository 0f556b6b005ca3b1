import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';

export const WECHAT_BASE_URL = 'https://api.mch.weixin.qq.com';
export const DEFAULT_WECHAT_TIMEOUT_MS = 10_000;

export interface WechatSettings {
  /** 商户号. */
  mchId: string;
  /** The AppID (公众号/小程序/移动应用) the payments are made under. */
  appId: string;
  /** Serial of the merchant API certificate whose key signs our requests. */
  merchantSerialNo: string;
  /** apiclient_key.pem. */
  merchantPrivateKeyPem: string;
  /** The APIv3 key (32 ASCII bytes) that decrypts notifications. */
  apiV3Key: string;
  /**
   * What the platform's signatures are checked with, by the serial in Wechatpay-Serial: the
   * WeChat Pay public key under its `PUB_KEY_ID_…`, and/or platform certificates under their
   * serials (publicKeyPem may then hold the certificate itself). Several may be listed while one
   * is being rotated out.
   */
  platformKeys: Array<{ serial: string; publicKeyPem: string }>;
  /** https://api.mch.weixin.qq.com, or a sandbox. */
  baseUrl: string;
  timeout_ms: number;
  /**
   * The 二级商户号 (sub_mchid) of the platform's own store (自营), for its sub-orders in combined
   * payments: the partner form has no sub-order without sub_mchid, and the platform's mchid may
   * not be one. Without it, a combined payment with the platform's own goods is refused.
   */
  selfOperatedSubMchId?: string;
}

/**
 * WECHATPAY_MCH_ID switches the channel on; without it the channel is not configured. Key
 * variables take either the PEM text itself (literal `\n` allowed) or a file path.
 */
export function wechatSettingsFromEnv(env: NodeJS.ProcessEnv): WechatSettings | undefined {
  const mchId = env.WECHATPAY_MCH_ID?.trim();
  if (!mchId) return undefined;
  const required = (name: string): string => {
    const value = env[name]?.trim();
    if (!value) throw new Error(`${name} is required when WECHATPAY_MCH_ID is set`);
    return value;
  };
  const platformKeys: WechatSettings['platformKeys'] = [];
  if (env.WECHATPAY_PUBLIC_KEY_ID?.trim()) {
    platformKeys.push({ serial: env.WECHATPAY_PUBLIC_KEY_ID.trim(), publicKeyPem: pemOrFile(required('WECHATPAY_PUBLIC_KEY'), 'WECHATPAY_PUBLIC_KEY') });
  }
  for (const certificatePem of certificates(env.WECHATPAY_PLATFORM_CERTS)) {
    platformKeys.push({ serial: new X509Certificate(certificatePem).serialNumber.toUpperCase(), publicKeyPem: certificatePem });
  }
  if (platformKeys.length === 0) throw new Error('WECHATPAY_PUBLIC_KEY_ID with WECHATPAY_PUBLIC_KEY, or WECHATPAY_PLATFORM_CERTS, is required to verify WeChat Pay');
  const apiV3Key = required('WECHATPAY_API_V3_KEY');
  if (Buffer.byteLength(apiV3Key, 'utf8') !== 32) throw new Error('WECHATPAY_API_V3_KEY must be 32 ASCII characters');
  const timeout = env.WECHATPAY_TIMEOUT_MS?.trim();
  const timeout_ms = timeout ? Number(timeout) : DEFAULT_WECHAT_TIMEOUT_MS;
  if (!Number.isSafeInteger(timeout_ms) || timeout_ms <= 0) throw new Error(`WECHATPAY_TIMEOUT_MS must be a positive integer, got "${timeout}"`);
  return {
    mchId,
    appId: required('WECHATPAY_APP_ID'),
    merchantSerialNo: required('WECHATPAY_MERCHANT_SERIAL_NO').toUpperCase(),
    merchantPrivateKeyPem: pemOrFile(required('WECHATPAY_MERCHANT_PRIVATE_KEY'), 'WECHATPAY_MERCHANT_PRIVATE_KEY'),
    apiV3Key,
    platformKeys,
    baseUrl: env.WECHATPAY_BASE_URL?.trim() || WECHAT_BASE_URL,
    timeout_ms,
    ...(env.WECHATPAY_SELF_OPERATED_SUB_MCH_ID?.trim() ? { selfOperatedSubMchId: env.WECHATPAY_SELF_OPERATED_SUB_MCH_ID.trim() } : {}),
  };
}

function pemOrFile(value: string, name: string): string {
  if (value.startsWith('-----BEGIN')) return value.replaceAll('\\n', '\n');
  try {
    return readFileSync(value, 'utf8');
  } catch (error) {
    throw new Error(`${name}: neither PEM text nor a readable file (${String(error)})`);
  }
}

/** PEM text holding one or more certificates, or a comma-separated list of files. */
function certificates(value: string | undefined): string[] {
  if (!value?.trim()) return [];
  const text = value.trim().startsWith('-----BEGIN')
    ? value.replaceAll('\\n', '\n')
    : value.split(',').map((path) => pemOrFile(path.trim(), 'WECHATPAY_PLATFORM_CERTS')).join('\n');
  const found = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (found.length === 0) throw new Error('WECHATPAY_PLATFORM_CERTS holds no certificate');
  return found.map((pem) => pem + '\n');
}
