import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signToken } from '../src/platform/http/tokens.ts';
import { availableEngines } from './support/engines.ts';
import { signClaims, startHarness, type Harness } from './support/harness.ts';
import { asAdmin, asBuyer, withToken } from './support/client.ts';

/**
 * Tokens at the edge, on every engine: revoked ones (by an admin, by token id) are refused,
 * in this process at once and in another process after its denylist reloads; a secret being
 * rotated out keeps its tokens valid; a subject that only parses as a number is no one.
 */
for (const engine of availableEngines()) {
  describe(`tokens at the edge on ${engine.name}`, () => {
    let h: Harness;
    let other: Harness;
    beforeAll(async () => {
      h = await startHarness(engine);
      // A second app on the same databases: another API process.
      other = await startHarness(engine, { databases: h.databases, worker: false });
    });
    afterAll(async () => {
      await other?.close({ keepDatabases: true });
      await h?.close();
    });

    const points = (app: Harness, token: string) => withToken(app, token).points();
    const idOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()).jti as string;

    const revoke = (token: string, reason = 'signed out') =>
      asAdmin(h).revokeToken({ tokenId: idOf(token), reason });

    it('a revoked token is refused at once here and after the reload in another process', async () => {
      const token = h.buyerToken(1);
      expect((await points(h, token)).status).toBe(200);
      expect((await points(other, token)).status).toBe(200);
      expect((await revoke(token)).status).toBe(201);
      expect((await points(h, token)).body).toMatchObject({ code: 'unauthenticated' });
      expect((await points(other, token)).status).toBe(200); // not reloaded yet
      await other.app.tokens.refresh();
      expect((await points(other, token)).status).toBe(401);
      // Another token of the same buyer is not affected.
      expect((await points(h, h.buyerToken(1))).status).toBe(200);
    });

    it('an admin revokes a token by its id; only admins may', async () => {
      const token = h.buyerToken(2);
      const body = { tokenId: idOf(token), reason: 'phone reported stolen' };
      const byBuyer = await asBuyer(h, 3).post('/admin/token-revocations', body);
      expect(byBuyer.status).toBe(403);
      expect((await points(h, token)).status).toBe(200);
      const revoked = await asAdmin(h).revokeToken(body);
      expect(revoked.status).toBe(201);
      expect((await points(h, token)).status).toBe(401);
      // Revoking twice is the same revocation.
      const again = await asAdmin(h).revokeToken(body);
      expect(again.status).toBe(201);
      const rows = await h.app.db.selectFrom('revoked_tokens').selectAll().where('token_id', '=', body.tokenId).execute();
      expect(rows).toHaveLength(1);
      expect(rows[0]!.reason).toBe('phone reported stolen');
    });

    it('a denylist entry goes once its token would have expired anyway', async () => {
      const token = h.buyerToken(4);
      await revoke(token);
      const id = idOf(token);
      expect(await h.app.db.selectFrom('revoked_tokens').select('token_id').where('token_id', '=', id).executeTakeFirst()).toBeDefined();
      h.clock.advance(31 * 24 * 3600_000);
      await h.app.tokens.refresh();
      expect(await h.app.db.selectFrom('revoked_tokens').select('token_id').where('token_id', '=', id).executeTakeFirst()).toBeUndefined();
    });

    it('subjects "0x1", "1e0", " 1" and "01" are not buyer 1', async () => {
      for (const sub of ['0x1', '1e0', ' 1', '01']) {
        const token = signClaims({ sub, role: 'buyer' }, h.clock.now());
        expect((await points(h, token)).status, sub).toBe(401);
      }
    });

    it('a token signed with the previous secret works while that secret is listed', async () => {
      const previous = 'the-previous-secret-of-the-flow-tests';
      const token = signToken(previous, { role: 'buyer', subject: '5' }, h.clock.now());
      expect((await points(h, token)).status).toBe(401);
      const rotated = await startHarness(engine, { databases: h.databases, worker: false, previousTokenSecrets: [previous] });
      try {
        expect((await points(rotated, token)).status).toBe(200);
      } finally {
        await rotated.close({ keepDatabases: true });
      }
    });
  });
}
