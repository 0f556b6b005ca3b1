import { generateKeyPairSync, randomBytes } from 'node:crypto';
import forge from 'node-forge';
import { UNIONPAY_CN_NAME } from '../../../payments/channels/unionpay/protocol.ts';

/**
 * The certificate hierarchy the sandbox plays: a root and a middle CA (CFCA's role), the
 * UnionPay signing certificate they vouch for, and the merchant's signing certificate whose
 * decimal serial is the certId. Made with node:crypto keys and node-forge certificates.
 */

export interface IssuedCert {
  certPem: string;
  keyPem: string;
}

const CERT_LIFETIME_MS = 5 * 365 * 24 * 3600_000;
const BACKDATE_MS = 24 * 3600_000;

export function newRsaKey(): { privatePem: string; publicPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  return { privatePem: privateKey, publicPem: publicKey };
}

/** A positive serial (top bit clear) of 9 random bytes, in the hex node-forge wants. */
function newSerialHex(): string {
  const bytes = randomBytes(9);
  bytes[0] = (bytes[0]! & 0x7f) | 0x01;
  return bytes.toString('hex');
}

type Attrs = forge.pki.CertificateField[];

export function issueCert(options: {
  subject: Attrs;
  issuer?: { certPem: string; keyPem: string };
  ca: boolean;
  now_ms: number;
  /** Times relative to now; tests use them to make expired certificates. */
  notBefore_ms?: number;
  notAfter_ms?: number;
}): IssuedCert {
  const key = newRsaKey();
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(key.publicPem);
  cert.serialNumber = newSerialHex();
  cert.validity.notBefore = new Date(options.now_ms + (options.notBefore_ms ?? -BACKDATE_MS));
  cert.validity.notAfter = new Date(options.now_ms + (options.notAfter_ms ?? CERT_LIFETIME_MS));
  cert.setSubject(options.subject);
  const issuerCert = options.issuer ? forge.pki.certificateFromPem(options.issuer.certPem) : undefined;
  cert.setIssuer(issuerCert ? issuerCert.subject.attributes : options.subject);
  cert.setExtensions(
    options.ca
      ? [{ name: 'basicConstraints', cA: true, critical: true }, { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true }]
      : [{ name: 'basicConstraints', cA: false }, { name: 'keyUsage', digitalSignature: true, nonRepudiation: true }],
  );
  const signer = forge.pki.privateKeyFromPem(options.issuer?.keyPem ?? key.privatePem);
  cert.sign(signer, forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem: key.privatePem };
}

function names(o: string, cn: string, ou?: string): Attrs {
  return [
    { name: 'countryName', value: 'CN' },
    { name: 'organizationName', value: o },
    ...(ou ? [{ name: 'organizationalUnitName', value: ou }] : []),
    // UTF8String: the CN carries Chinese text, as CFCA's certificates do.
    { name: 'commonName', value: cn, valueTagClass: forge.asn1.Type.UTF8 as unknown as forge.asn1.Class },
  ];
}

export function issueRoot(now_ms: number): IssuedCert {
  return issueCert({ subject: names('China Financial Certification Authority', 'CFCA Sandbox Root'), ca: true, now_ms });
}

export function issueMiddle(root: IssuedCert, now_ms: number): IssuedCert {
  return issueCert({ subject: names('China Financial Certification Authority', 'CFCA Sandbox OCA1'), issuer: root, ca: true, now_ms });
}

/** UnionPay's signing certificate: the CN's third @-part is what the SDK checks. */
export function issueUnionpaySigner(middle: IssuedCert, now_ms: number, identity = UNIONPAY_CN_NAME): IssuedCert {
  return issueCert({ subject: names('CFCA OCA1', `041@Z12400000000000@${identity}@00000001`, '00040000:SIGN'), issuer: middle, ca: false, now_ms });
}

export function issueMerchantSigner(middle: IssuedCert, merId: string, now_ms: number): IssuedCert {
  return issueCert({ subject: names('CFCA OCA1', `041@Z${merId}@${merId}@00000001`, 'Local RA'), issuer: middle, ca: false, now_ms });
}
