import { readFileSync } from 'node:fs';
import forge from 'node-forge';
import { certIdOf } from './protocol.ts';

/** Everything our UnionPay adapter is configured with. */
export interface UnionpaySettings {
  /** 商户代码, 15 digits. */
  merId: string;
  /** Decimal serial number of our signing certificate (what the .pfx holds). */
  signCertId: string;
  signPrivateKeyPem: string;
  /** UnionPay's root and middle certificates (acp_prod_root.cer, acp_prod_middle.cer): the chain every signPubKeyCert must follow. */
  rootCertPem: string;
  middleCertPem: string;
  /** true in production; the test environment's signing certificate is named 00040000:SIGN instead of 中国银联股份有限公司. */
  validateCnName: boolean;
  /** Base of /gateway/api/*.do: https://gateway.95516.com (test: https://gateway.test.95516.com). */
  gatewayUrl: string;
  /** fileTransfer lives on its own host: https://filedownload.95516.com/ (test: https://filedownload.test.95516.com/). */
  fileTransferUrl: string;
  /** 0: a merchant connecting directly (1 is an acquirer, 2 a platform merchant). */
  accessType: '0';
  timeout_ms: number;
}

export const UNIONPAY_PRODUCTION_GATEWAY = 'https://gateway.95516.com';
export const UNIONPAY_PRODUCTION_FILE_TRANSFER = 'https://filedownload.95516.com/';
/** How long one call to UnionPay may take before we call the channel unavailable. */
export const UNIONPAY_DEFAULT_TIMEOUT_MS = 10_000;

/**
 * Settings from UNIONPAY_* variables, or undefined when UNIONPAY_MER_ID is not set. Key
 * material is given inline (PEM text, `\n` escapes allowed) or as a file path (`…_FILE`); the
 * signing key may instead come from the .pfx UnionPay issues (UNIONPAY_SIGN_PFX_FILE and
 * UNIONPAY_SIGN_PFX_PASSWORD), which also gives the certId.
 */
export function unionpaySettingsFromEnv(env: NodeJS.ProcessEnv): UnionpaySettings | undefined {
  const merId = env.UNIONPAY_MER_ID?.trim();
  if (!merId) return undefined;
  let signPrivateKeyPem = pem(env, 'UNIONPAY_SIGN_KEY');
  let signCertId = env.UNIONPAY_SIGN_CERT_ID?.trim();
  const pfxFile = env.UNIONPAY_SIGN_PFX_FILE?.trim();
  if (pfxFile) {
    const fromPfx = readPfx(readFileSync(pfxFile), env.UNIONPAY_SIGN_PFX_PASSWORD ?? '');
    signPrivateKeyPem ??= fromPfx.privateKeyPem;
    signCertId ??= fromPfx.certId;
  }
  const signCertPem = pem(env, 'UNIONPAY_SIGN_CERT');
  if (!signCertId && signCertPem) signCertId = certIdOf(signCertPem);
  const rootCertPem = pem(env, 'UNIONPAY_ROOT_CERT');
  const middleCertPem = pem(env, 'UNIONPAY_MIDDLE_CERT');
  const missing = [
    !signPrivateKeyPem && 'UNIONPAY_SIGN_KEY(_FILE) or UNIONPAY_SIGN_PFX_FILE',
    !signCertId && 'UNIONPAY_SIGN_CERT_ID (or UNIONPAY_SIGN_CERT(_FILE), or a .pfx)',
    !rootCertPem && 'UNIONPAY_ROOT_CERT(_FILE)',
    !middleCertPem && 'UNIONPAY_MIDDLE_CERT(_FILE)',
  ].filter(Boolean);
  // A half-configured channel is a deployment mistake: say so at start rather than fail on the first payment.
  if (missing.length > 0) throw new Error(`UNIONPAY_MER_ID is set but these are missing: ${missing.join(', ')}`);
  const timeout_ms = Number(env.UNIONPAY_TIMEOUT_MS ?? UNIONPAY_DEFAULT_TIMEOUT_MS);
  if (!Number.isSafeInteger(timeout_ms) || timeout_ms <= 0) throw new Error('UNIONPAY_TIMEOUT_MS must be a positive integer');
  return {
    merId,
    signCertId: signCertId!,
    signPrivateKeyPem: signPrivateKeyPem!,
    rootCertPem: rootCertPem!,
    middleCertPem: middleCertPem!,
    validateCnName: (env.UNIONPAY_VALIDATE_CN_NAME ?? 'true').trim().toLowerCase() !== 'false',
    gatewayUrl: (env.UNIONPAY_GATEWAY?.trim() || UNIONPAY_PRODUCTION_GATEWAY).replace(/\/+$/, ''),
    fileTransferUrl: env.UNIONPAY_FILE_TRANSFER_URL?.trim() || UNIONPAY_PRODUCTION_FILE_TRANSFER,
    accessType: '0',
    timeout_ms,
  };
}

function pem(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const inline = env[name]?.trim();
  if (inline) return inline.replaceAll('\\n', '\n');
  const file = env[`${name}_FILE`]?.trim();
  return file ? readFileSync(file, 'utf8') : undefined;
}

/** The signing key and certId out of the PKCS#12 file UnionPay issues to a merchant. */
export function readPfx(pfx: Uint8Array, password: string): { privateKeyPem: string; certId: string } {
  const p12 = forge.pkcs12.pkcs12FromAsn1(forge.asn1.fromDer(forge.util.createBuffer(Buffer.from(pfx).toString('binary'))), password);
  const keyBag = p12.getBags({ bagType: forge.pki.oids.pkcs8ShroudedKeyBag! })[forge.pki.oids.pkcs8ShroudedKeyBag!]?.[0];
  const certBag = p12.getBags({ bagType: forge.pki.oids.certBag! })[forge.pki.oids.certBag!]?.[0];
  if (!keyBag?.key || !certBag?.cert) throw new Error('the .pfx holds no private key and certificate');
  return { privateKeyPem: forge.pki.privateKeyToPem(keyBag.key), certId: BigInt('0x' + certBag.cert.serialNumber).toString(10) };
}
