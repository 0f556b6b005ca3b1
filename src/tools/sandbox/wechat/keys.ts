import { generateKeyPairSync, randomBytes, randomInt } from 'node:crypto';
import forge from 'node-forge';

export interface WechatSandboxKeys {
  mchId: string;
  appId: string;
  /** 32 ASCII characters, shared by merchant and platform. */
  apiV3Key: string;
  /** The merchant's API key pair; the platform knows the public half under serialNo. */
  merchant: { serialNo: string; privateKeyPem: string; publicKeyPem: string };
  /**
   * The platform's signing keys. The first signs everything; the others are keys merchants
   * still trust. A `PUB_KEY_ID_…` serial comes with a bare public key; a certificate serial
   * with the platform certificate (publicKeyPem then holds the certificate).
   */
  platform: Array<{ serial: string; privateKeyPem: string; publicKeyPem: string }>;
}

/** Long enough that no clock runs out while a sandbox keeps its key file. */
const CERTIFICATE_VALIDITY_MS = 5 * 365 * 86_400_000;

function rsaPair(): { privateKeyPem: string; publicKeyPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  return { privateKeyPem: privateKey, publicKeyPem: publicKey };
}

function digits(n: number): string {
  return Array.from({ length: n }, () => randomInt(10)).join('');
}

/** Certificate serials as WeChat writes them: 40 upper-case hex digits (first below 8, so DER keeps it positive). */
function certificateSerial(): string {
  return (randomInt(1, 8).toString(16) + randomBytes(20).toString('hex').slice(1)).toUpperCase();
}

function platformCertificate(pair: { privateKeyPem: string; publicKeyPem: string }, serial: string): string {
  const certificate = forge.pki.createCertificate();
  certificate.publicKey = forge.pki.publicKeyFromPem(pair.publicKeyPem);
  certificate.serialNumber = serial;
  certificate.validity.notBefore = new Date(Date.now() - 86_400_000);
  certificate.validity.notAfter = new Date(Date.now() + CERTIFICATE_VALIDITY_MS);
  const name = [
    { name: 'commonName', value: 'Tenpay.com sandbox platform' },
    { name: 'organizationName', value: 'Tenpay.com' },
    { name: 'countryName', value: 'CN' },
  ];
  certificate.setSubject(name);
  certificate.setIssuer(name);
  certificate.sign(forge.pki.privateKeyFromPem(pair.privateKeyPem), forge.md.sha256.create());
  return forge.pki.certificateToPem(certificate);
}

export function generateWechatKeys(): WechatSandboxKeys {
  const mchId = `19${digits(8)}`;
  const merchant = rsaPair();
  const publicKeyMode = rsaPair();
  const certificateMode = rsaPair();
  const certSerial = certificateSerial();
  return {
    mchId,
    appId: `wx${randomBytes(8).toString('hex')}`,
    apiV3Key: randomBytes(16).toString('hex'),
    merchant: { serialNo: certificateSerial(), ...merchant },
    platform: [
      { serial: `PUB_KEY_ID_01${mchId}${digits(14)}`, ...publicKeyMode },
      { serial: certSerial, privateKeyPem: certificateMode.privateKeyPem, publicKeyPem: platformCertificate(certificateMode, certSerial) },
    ],
  };
}
