import { createCipheriv, createPrivateKey, createPublicKey, createSign, createVerify, randomBytes, type KeyObject } from 'node:crypto';

/**
 * The platform's half of WeChat Pay's signatures, written apart from the adapter's so that the
 * two sides check each other: verifying the merchant's Authorization header, signing answers
 * and notifications, and sealing notification resources with the APIv3 key.
 */

const SCHEMA = 'WECHATPAY2-SHA256-RSA2048';
/** WeChat refuses requests whose timestamp is further than this from its clock. */
const MAX_REQUEST_SKEW_S = 300;

export interface PlatformSigner {
  serial: string;
  key: KeyObject;
}

export interface MerchantIdentity {
  mchId: string;
  serialNo: string;
  publicKey: KeyObject;
}

export function platformSigner(serial: string, privateKeyPem: string): PlatformSigner {
  return { serial, key: createPrivateKey(privateKeyPem) };
}

export function merchantIdentity(mchId: string, serialNo: string, publicKeyPem: string): MerchantIdentity {
  return { mchId, serialNo, publicKey: createPublicKey(publicKeyPem) };
}

/** Why the request's Authorization does not hold, or undefined when it does. */
export function authorizationProblem(
  merchant: MerchantIdentity,
  request: { method: string; url: string; body: string; authorization: string | undefined },
  now_ms: number,
): string | undefined {
  const header = request.authorization ?? '';
  if (!header.startsWith(`${SCHEMA} `)) return '缺少认证信息或认证类型错误';
  const params = new Map<string, string>();
  for (const m of header.slice(SCHEMA.length + 1).matchAll(/(\w+)="([^"]*)"/g)) params.set(m[1]!, m[2]!);
  const [mchid, nonce, timestamp, serial, signature] = ['mchid', 'nonce_str', 'timestamp', 'serial_no', 'signature'].map((name) => params.get(name));
  if (!mchid || !nonce || !timestamp || !serial || !signature) return '认证信息不完整';
  if (mchid !== merchant.mchId) return '商户号与认证信息不符';
  if (serial.toUpperCase() !== merchant.serialNo.toUpperCase()) return '商户证书序列号有误';
  if (!/^\d{1,12}$/.test(timestamp) || Math.abs(Math.floor(now_ms / 1000) - Number(timestamp)) > MAX_REQUEST_SKEW_S) return '时间戳已过期';
  const message = `${request.method}\n${request.url}\n${timestamp}\n${nonce}\n${request.body}\n`;
  let valid = false;
  try {
    valid = createVerify('RSA-SHA256').update(message, 'utf8').verify(merchant.publicKey, signature, 'base64');
  } catch {
    valid = false;
  }
  return valid ? undefined : '错误的签名，验签失败';
}

/** The Wechatpay-* headers over a body. spoil: sign something else, as WeChat's probes do. */
export function platformHeaders(signer: PlatformSigner, body: string, now_ms: number, spoil = false): Record<string, string> {
  const timestamp = String(Math.floor(now_ms / 1000));
  const nonce = randomBytes(16).toString('hex');
  const signed = spoil ? `${timestamp}\n${nonce}\n${body} \n` : `${timestamp}\n${nonce}\n${body}\n`;
  return {
    'Wechatpay-Timestamp': timestamp,
    'Wechatpay-Nonce': nonce,
    'Wechatpay-Signature': createSign('RSA-SHA256').update(signed, 'utf8').sign(signer.key, 'base64'),
    'Wechatpay-Serial': signer.serial,
    'Wechatpay-Signature-Type': SCHEMA,
  };
}

/** AEAD_AES_256_GCM with a 12-character nonce; the tag is appended to the ciphertext. */
export function sealResource(apiV3Key: string, plaintext: string, associatedData: string) {
  const nonce = randomBytes(9).toString('base64url').slice(0, 12);
  const cipher = createCipheriv('aes-256-gcm', Buffer.from(apiV3Key, 'utf8'), Buffer.from(nonce, 'utf8'));
  cipher.setAAD(Buffer.from(associatedData, 'utf8'));
  const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()]).toString('base64');
  return { algorithm: 'AEAD_AES_256_GCM', ciphertext, nonce, associated_data: associatedData };
}
