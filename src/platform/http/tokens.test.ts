import { describe, expect, it } from 'vitest';
import { signToken, verifyToken } from './tokens.ts';

describe('bearer tokens', () => {
  const now = Date.UTC(2026, 10, 24);
  const token = signToken('s3cret', { role: 'buyer', subject: '42' }, now, 3600);
  const cases: { name: string; token: string; secret?: string; at?: number; valid: boolean }[] = [
    { name: 'valid', token, valid: true },
    { name: 'other secret', token, secret: 'other', valid: false },
    { name: 'expired', token, at: now + 3601_000, valid: false },
    { name: 'tampered payload', token: token.replace(/\.[^.]+\./, `.${Buffer.from(JSON.stringify({ sub: '1', role: 'admin', exp: 9e9 })).toString('base64url')}.`), valid: false },
    { name: 'truncated signature', token: token.slice(0, -3), valid: false },
    { name: 'garbage', token: 'a.b.c', valid: false },
    { name: 'empty', token: '', valid: false },
    { name: 'huge', token: 'x'.repeat(5000), valid: false },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const principal = verifyToken(c.secret ?? 's3cret', c.token, c.at ?? now);
      if (c.valid) expect(principal).toEqual({ role: 'buyer', subject: '42' });
      else expect(principal).toBeUndefined();
    });
  }
});
