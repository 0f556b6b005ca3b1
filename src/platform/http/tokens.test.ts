import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { checkTokenSecret, DEFAULT_ADMIN_TOKEN_TTL_S, keyId, MIN_TOKEN_SECRET_BYTES, signToken, verifyToken } from './tokens.ts';

const SECRET = 'a-secret-of-the-token-unit-tests-32b';
const OLD = 'the-previous-secret-being-rotated-out';
const B64URL_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** A token as an attacker would make one: any header and claims, signed with `secret`. */
function forge(secret: string, claims: object, header: object = { alg: 'HS256', typ: 'JWT', kid: keyId(secret) }): string {
  const h = Buffer.from(JSON.stringify(header)).toString('base64url');
  const p = Buffer.from(JSON.stringify(claims)).toString('base64url');
  return `${h}.${p}.${createHmac('sha256', secret).update(`${h}.${p}`).digest('base64url')}`;
}

describe('bearer tokens', () => {
  const now = Date.UTC(2026, 10, 24);
  const token = signToken(SECRET, { role: 'buyer', subject: '42' }, now, 3600);
  const exp = Math.floor(now / 1000) + 3600;
  const cases: { name: string; token: string; secrets?: string[]; at?: number; valid: boolean }[] = [
    { name: 'valid', token, valid: true },
    { name: 'other secret', token, secrets: ['another-secret-that-is-long-enough!!'], valid: false },
    { name: 'expired', token, at: now + 3601_000, valid: false },
    { name: 'tampered payload', token: token.replace(/\.[^.]+\./, `.${Buffer.from(JSON.stringify({ sub: '1', role: 'admin', exp: 9e9, jti: 'x' })).toString('base64url')}.`), valid: false },
    { name: 'truncated signature', token: token.slice(0, -3), valid: false },
    { name: 'garbage', token: 'a.b.c', valid: false },
    { name: 'empty', token: '', valid: false },
    { name: 'huge', token: 'x'.repeat(5000), valid: false },
    // Base64url decoding ignores what cannot be a character and the spare bits of the last one:
    // the signature is compared as the canonical string, so none of these verify.
    { name: 'padding after the signature', token: token + '=', valid: false },
    { name: 'junk after the signature', token: token + '%%', valid: false },
    { name: 'a fourth part', token: token + '.x', valid: false },
    // 32 bytes are 43 characters: the last one's two low bits are spare, so flipping one decodes the same.
    { name: 'changed last character of the signature', token: token.slice(0, -1) + B64URL_ALPHABET[B64URL_ALPHABET.indexOf(token.at(-1)!) ^ 1], valid: false },
    { name: 'no key id (the format before rotation)', token: forge(SECRET, { sub: '42', role: 'buyer', exp, jti: 'abc' }, { alg: 'HS256', typ: 'JWT' }), valid: false },
    { name: 'no token id', token: forge(SECRET, { sub: '42', role: 'buyer', exp }), valid: false },
    { name: 'alg none', token: forge(SECRET, { sub: '42', role: 'buyer', exp, jti: 'abc' }, { alg: 'none', typ: 'JWT', kid: keyId(SECRET) }), valid: false },
    { name: 'signed by a previous secret still accepted', token: signToken(OLD, { role: 'buyer', subject: '42' }, now, 3600), secrets: [SECRET, OLD], valid: true },
    { name: 'signed by a secret no longer accepted', token: signToken(OLD, { role: 'buyer', subject: '42' }, now, 3600), valid: false },
  ];
  for (const testCase of cases) {
    it(testCase.name, () => {
      const principal = verifyToken(testCase.secrets ?? [SECRET], testCase.token, testCase.at ?? now);
      if (testCase.valid) expect(principal).toMatchObject({ role: 'buyer', subject: '42' });
      else expect(principal).toBeUndefined();
    });
  }

  it('subjects of buyers, merchants and leaders are canonical decimal ids only', () => {
    for (const sub of ['0x1', '1e0', ' 1', '1 ', '01', '+1', '-1', '1.0', '0', '', '9007199254740993']) {
      expect(verifyToken(SECRET, forge(SECRET, { sub, role: 'buyer', exp, jti: 'abc' }), now), sub).toBeUndefined();
      expect(() => signToken(SECRET, { role: 'buyer', subject: sub }, now), sub).toThrow();
    }
    expect(verifyToken(SECRET, forge(SECRET, { sub: '1', role: 'buyer', exp, jti: 'abc' }), now)).toMatchObject({ subject: '1', tokenId: 'abc' });
  });

  it('each token has its own id, and an admin token lives 12 hours', () => {
    const a = verifyToken(SECRET, signToken(SECRET, { role: 'admin', subject: 'ops' }, now), now)!;
    const b = verifyToken(SECRET, signToken(SECRET, { role: 'admin', subject: 'ops' }, now), now)!;
    expect(a.tokenId).not.toBe(b.tokenId);
    expect(a.expires_at_ms - now).toBe(DEFAULT_ADMIN_TOKEN_TTL_S * 1000);
    expect(verifyToken(SECRET, signToken(SECRET, { role: 'admin', subject: 'ops' }, now), now + DEFAULT_ADMIN_TOKEN_TTL_S * 1000)).toBeUndefined();
  });

  it(`refuses a secret shorter than ${MIN_TOKEN_SECRET_BYTES} bytes, an empty one first`, () => {
    expect(() => checkTokenSecret('')).toThrow(/TOKEN_SECRET must be at least 32 bytes/);
    expect(() => checkTokenSecret('x'.repeat(MIN_TOKEN_SECRET_BYTES - 1))).toThrow();
    expect(() => checkTokenSecret('x'.repeat(MIN_TOKEN_SECRET_BYTES))).not.toThrow();
  });
});
