import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Signed bearer tokens: compact JWS with HS256 over the secret from the environment.
 * The subject is the buyer, merchant or leader id (admins: any name).
 */
export const ROLES = ['buyer', 'merchant', 'leader', 'admin'] as const;
export type Role = (typeof ROLES)[number];

export interface Principal {
  role: Role;
  subject: string;
}

export const DEFAULT_TOKEN_TTL_S = 30 * 24 * 3600;
const MAX_TOKEN_LENGTH = 2048;

const b64url = (data: Buffer | string): string => Buffer.from(data).toString('base64url');
const HEADER = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));

export function signToken(secret: string, principal: Principal, now_ms: number, ttl_s = DEFAULT_TOKEN_TTL_S): string {
  const iat = Math.floor(now_ms / 1000);
  const payload = b64url(JSON.stringify({ sub: principal.subject, role: principal.role, iat, exp: iat + ttl_s }));
  const signature = createHmac('sha256', secret).update(`${HEADER}.${payload}`).digest('base64url');
  return `${HEADER}.${payload}.${signature}`;
}

/** The principal of a valid, unexpired token; undefined for anything else. */
export function verifyToken(secret: string, token: string, now_ms: number): Principal | undefined {
  if (token.length > MAX_TOKEN_LENGTH) return undefined;
  const [header, payload, signature, ...rest] = token.split('.');
  if (header !== HEADER || !payload || !signature || rest.length > 0) return undefined;
  const expected = createHmac('sha256', secret).update(`${header}.${payload}`).digest();
  const given = Buffer.from(signature, 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
  let claims: { sub?: unknown; role?: unknown; exp?: unknown };
  try {
    claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof claims.sub !== 'string' || !ROLES.includes(claims.role as Role)) return undefined;
  if (typeof claims.exp !== 'number' || claims.exp * 1000 <= now_ms) return undefined;
  return { role: claims.role as Role, subject: claims.sub };
}
