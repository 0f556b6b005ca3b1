import { z } from 'zod';
import { authorize } from '../platform/http/auth.ts';
import type { RouteModule } from '../platform/http/server.ts';
import { MAX_TOKEN_TTL_S } from '../platform/http/tokens.ts';
import type { TokenGate } from './token-gate.ts';

/** What the access routes use of the app. */
export interface AccessRouteDeps {
  now: () => number;
  tokens: Pick<TokenGate, 'revoke'>;
}

/** Room for why, in the denylist row. */
export const MAX_REVOCATION_REASON_LENGTH = 200;

export const accessRoutes: RouteModule<AccessRouteDeps> = (server, app) => {
  server.post(
    '/admin/token-revocations',
    {
      schema: {
        summary: 'Revoke a bearer token by its id (the `jti` claim); it is refused everywhere within seconds',
        tags: ['access'],
        body: z
          .object({
            tokenId: z.string().regex(/^[A-Za-z0-9_-]{1,32}$/, 'a token id is up to 32 base64url characters'),
            reason: z.string().min(1).max(MAX_REVOCATION_REASON_LENGTH),
          })
          .strict(),
      },
    },
    async (request, reply) => {
      authorize(request, 'admin');
      const now = app.now();
      // The id alone does not say when the token expires: keep the entry as long as any token can live.
      await app.tokens.revoke({ tokenId: request.body.tokenId, expires_at_ms: now + MAX_TOKEN_TTL_S * 1000, reason: request.body.reason }, now);
      request.log.info({ tokenId: request.body.tokenId }, 'token revoked');
      return reply.status(201).send({ tokenId: request.body.tokenId, revokedAt: new Date(now).toISOString() });
    },
  );

};
