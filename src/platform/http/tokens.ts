import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Signed bearer tokens: compact JWS with HS256. The header names the key (`kid`, derived from
 * the secret), so a secret can be rotated: the old one stays accepted while its tokens live.
 * Each token has an id (`jti`) that can be put on the denylist. The subject is the buyer,
 * merchant or leader id in canonical decimal (admins: a name).
 */
export const ROLES = ['buyer', 'merchant', 'leader', 'admin'] as const;
export type Role = (typeof ROLES)[number];

export interface Principal {
  role: Role;
  subject: string;
}

/** A verified token: who it speaks for, its id (for the denylist) and when it expires. */
export interface VerifiedToken extends Principal {
  tokenId: string;
  expires_at_ms: number;
}

/** Buyers, merchants and leaders: 30 days. */
export const DEFAULT_TOKEN_TTL_S = 30 * 24 * 3600;
/** Admins: 12 hours; an admin token leaks with more harm. */
export const DEFAULT_ADMIN_TOKEN_TTL_S = 12 * 3600;
/** No token lives longer, whatever it is signed with; a denylist entry can be dropped after this. */
export const MAX_TOKEN_TTL_S = 30 * 24 * 3600;
/** A shorter HMAC key can be guessed or is a template's empty value: refused at start. */
export const MIN_TOKEN_SECRET_BYTES = 32;
const MAX_TOKEN_LENGTH = 2048;

/** Ids in canonical decimal: no sign, no leading zero, no exponent or hex, below 2^53. */
const ID_SUBJECT = /^[1-9][0-9]{0,15}$/;
const ADMIN_SUBJECT = /^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$/;
const B64URL = /^[A-Za-z0-9_-]+$/;

const b64url = (data: Buffer | string): string => Buffer.from(data).toString('base64url');

/** The key id of a secret: not the secret, and the same in every process that has it. */
export function keyId(secret: string): string {
  return createHash('sha256').update(`tuangou-token-key:${secret}`).digest('base64url').slice(0, 12);
}

const headerOf = (kid: string): string => b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT', kid }));

/** Refuses a secret too short to be a key (an empty TOKEN_SECRET signs tokens anyone can make). */
export function checkTokenSecret(secret: string, name = 'TOKEN_SECRET'): void {
  if (Buffer.byteLength(secret, 'utf8') < MIN_TOKEN_SECRET_BYTES) {
    throw new Error(`${name} must be at least ${MIN_TOKEN_SECRET_BYTES} bytes (e.g. \`openssl rand -hex 32\`); got ${Buffer.byteLength(secret, 'utf8')}`);
  }
}

export function defaultTtl_s(role: Role): number {
  return role === 'admin' ? DEFAULT_ADMIN_TOKEN_TTL_S : DEFAULT_TOKEN_TTL_S;
}

export function validSubject(role: Role, subject: string): boolean {
  return role === 'admin' ? ADMIN_SUBJECT.test(subject) : ID_SUBJECT.test(subject) && Number.isSafeInteger(Number(subject));
}

export function signToken(secret: string, principal: Principal, now_ms: number, ttl_s = defaultTtl_s(principal.role)): string {
  if (!validSubject(principal.role, principal.subject)) throw new Error(`not a ${principal.role} subject: "${principal.subject}"`);
  if (!Number.isSafeInteger(ttl_s) || ttl_s <= 0 || ttl_s > MAX_TOKEN_TTL_S) throw new Error(`a token lives 1 s to ${MAX_TOKEN_TTL_S} s, not ${ttl_s}`);
  const header = headerOf(keyId(secret));
  const iat = Math.floor(now_ms / 1000);
  const jti = randomBytes(12).toString('base64url');
  const payload = b64url(JSON.stringify({ sub: principal.subject, role: principal.role, iat, exp: iat + ttl_s, jti }));
  return `${header}.${payload}.${hmac(secret, `${header}.${payload}`)}`;
}

/**
 * The token's principal if it is valid and unexpired under one of `secrets` (the current one
 * first, then those being rotated out); undefined for anything else. The signature is compared
 * as the canonical string, so padding, junk or a changed last character after it do not verify.
 */
export function verifyToken(secrets: string | readonly string[], token: string, now_ms: number): VerifiedToken | undefined {
  if (token.length > MAX_TOKEN_LENGTH) return undefined;
  const parts = token.split('.');
  if (parts.length !== 3 || !parts.every((part) => B64URL.test(part))) return undefined;
  const [header, payload, signature] = parts as [string, string, string];
  const secret = (typeof secrets === 'string' ? [secrets] : secrets).find((s) => headerOf(keyId(s)) === header);
  if (secret === undefined) return undefined;
  const expected = Buffer.from(hmac(secret, `${header}.${payload}`));
  const given = Buffer.from(signature);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
  let claims: { sub?: unknown; role?: unknown; exp?: unknown; jti?: unknown };
  try {
    claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof claims !== 'object' || claims === null) return undefined;
  const { sub, role, exp, jti } = claims;
  if (typeof role !== 'string' || !ROLES.includes(role as Role)) return undefined;
  if (typeof sub !== 'string' || !validSubject(role as Role, sub)) return undefined;
  if (typeof jti !== 'string' || !B64URL.test(jti) || jti.length > 32) return undefined;
  if (typeof exp !== 'number' || !Number.isSafeInteger(exp) || exp * 1000 <= now_ms) return undefined;
  return { role: role as Role, subject: sub, tokenId: jti, expires_at_ms: exp * 1000 };
}

function hmac(secret: string, data: string): string {
  return createHmac('sha256', secret).update(data).digest('base64url');
}
