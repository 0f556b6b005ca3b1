import { createPrivateKey, createPublicKey, type KeyObject, type PrivateKeyInput, type PublicKeyInput } from 'node:crypto';
import { readFileSync } from 'node:fs';

export interface AlipaySettings {
  /** The application's id on the Alipay open platform (app_id). */
  appId: string;
  /** The application's RSA private key, PKCS#8 PEM: signs every request. */
  appPrivateKeyPem: string;
  /** Alipay's public key (SPKI PEM): verifies responses and notifications. Not the app's own public key. */
  alipayPublicKeyPem: string;
  /** The v2 gateway, ending in /gateway.do. */
  gatewayUrl: string;
  /** Each gateway call's limit. */
  timeout_ms: number;
  /** Downloading a bill file, which can be large. */
  billDownloadTimeout_ms: number;
}

export const ALIPAY_PRODUCTION_GATEWAY = 'https://openapi.alipay.com/gateway.do';
export const DEFAULT_ALIPAY_TIMEOUT_MS = 10_000;
export const DEFAULT_ALIPAY_BILL_DOWNLOAD_TIMEOUT_MS = 60_000;

/**
 * ALIPAY_APP_ID, ALIPAY_PRIVATE_KEY or ALIPAY_PRIVATE_KEY_FILE, ALIPAY_PUBLIC_KEY or
 * ALIPAY_PUBLIC_KEY_FILE, and optionally ALIPAY_GATEWAY, ALIPAY_TIMEOUT_MS,
 * ALIPAY_BILL_DOWNLOAD_TIMEOUT_MS. Without ALIPAY_APP_ID the channel is not configured; with it,
 * a missing or unreadable key stops the start rather than failing the first payment.
 */
export function alipaySettingsFromEnv(env: NodeJS.ProcessEnv): AlipaySettings | undefined {
  const appId = env.ALIPAY_APP_ID?.trim();
  if (!appId) return undefined;
  const privateKey = inlineOrFile(env, 'ALIPAY_PRIVATE_KEY');
  const publicKey = inlineOrFile(env, 'ALIPAY_PUBLIC_KEY');
  return {
    appId,
    appPrivateKeyPem: privateKeyPem(privateKey, 'ALIPAY_PRIVATE_KEY'),
    alipayPublicKeyPem: publicKeyPem(publicKey, 'ALIPAY_PUBLIC_KEY'),
    gatewayUrl: env.ALIPAY_GATEWAY?.trim() || ALIPAY_PRODUCTION_GATEWAY,
    timeout_ms: positiveInt(env.ALIPAY_TIMEOUT_MS, DEFAULT_ALIPAY_TIMEOUT_MS, 'ALIPAY_TIMEOUT_MS'),
    billDownloadTimeout_ms: positiveInt(env.ALIPAY_BILL_DOWNLOAD_TIMEOUT_MS, DEFAULT_ALIPAY_BILL_DOWNLOAD_TIMEOUT_MS, 'ALIPAY_BILL_DOWNLOAD_TIMEOUT_MS'),
  };
}

function inlineOrFile(env: NodeJS.ProcessEnv, name: string): string {
  const inline = env[name]?.trim();
  if (inline) return inline;
  const file = env[`${name}_FILE`]?.trim();
  if (file) return readFileSync(file, 'utf8');
  throw new Error(`ALIPAY_APP_ID is set, so ${name} or ${name}_FILE is required`);
}

/**
 * The Alipay console hands out keys as bare base64 (PKCS#8 for Java, PKCS#1 for others) and
 * people paste PEM of either kind; every form is read here and kept as PKCS#8 PEM, so the
 * SDK is always given one kind.
 */
function privateKeyPem(text: string, name: string): string {
  const key = readKey(text, name, ['pkcs8', 'pkcs1'], (input) => createPrivateKey(input as PrivateKeyInput));
  return key.export({ type: 'pkcs8', format: 'pem' }).toString();
}

function publicKeyPem(text: string, name: string): string {
  const key = readKey(text, name, ['spki', 'pkcs1'], (input) => createPublicKey(input as PublicKeyInput));
  return key.export({ type: 'spki', format: 'pem' }).toString();
}

function readKey(text: string, name: string, derTypes: readonly string[], make: (input: string | PrivateKeyInput | PublicKeyInput) => KeyObject): KeyObject {
  const trimmed = text.trim();
  if (trimmed.startsWith('-----BEGIN')) return make(trimmed);
  const der = Buffer.from(trimmed.replace(/\s+/g, ''), 'base64');
  for (const type of derTypes) {
    try {
      return make({ key: der, format: 'der', type } as PrivateKeyInput | PublicKeyInput);
    } catch {
      // not this encoding; try the next
    }
  }
  throw new Error(`${name} is not an RSA key in PEM or base64 DER`);
}

function positiveInt(value: string | undefined, fallback: number, name: string): number {
  if (value === undefined || value.trim() === '') return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer, got "${value}"`);
  return n;
}
