
import { ignoreDuplicates } from '../platform/db/sql.ts';
import { pollingLoop, type PollingLoop } from '../platform/polling-loop.ts';
import { verifyToken, type VerifiedToken } from '../platform/http/tokens.ts';
import type { AccessDb } from './tables.ts';

/**
 * Who is calling: a bearer token that verifies under the current or a previous secret and is not
 * on the denylist. The denylist (`revoked_tokens`, main database) is held in memory and refreshed
 * every TOKEN_REVOCATION_REFRESH_MS, so a revocation made by another process takes effect within
 * that; one made by this process at once.
 */
export interface TokenGate {
  principalOf(authorization: string | undefined, now_ms: number): VerifiedToken | undefined;
  revoke(revocation: { tokenId: string; expires_at_ms: number; reason: string }, now_ms: number): Promise<void>;
  /** Reloads the denylist now and drops the entries of tokens that have expired anyway. */
  refresh(): Promise<number>;
  stop(): Promise<void>;
}

/** How often each process reloads the denylist. */
export const TOKEN_REVOCATION_REFRESH_MS = 5_000;

export async function startTokenGate(options: {
  db: AccessDb;
  /** The current secret first, then the ones being rotated out. */
  secrets: readonly string[];
  now: () => number;
  refresh_ms?: number;
  onError: (error: unknown) => void;
}): Promise<TokenGate> {
  const { db, secrets, now } = options;
  let revoked = new Set<string>();
  const refresh = async (): Promise<number> => {
    const at = now();
    await db.deleteFrom('revoked_tokens').where('expires_at_ms', '<=', at).execute();
    const rows = await db.selectFrom('revoked_tokens').select('token_id').where('expires_at_ms', '>', at).execute();
    revoked = new Set(rows.map((r) => r.token_id));
    // Nothing to "do" in the polling loop's sense: it sleeps the whole interval between loads.
    return 0;
  };
  await refresh();
  const refresh_ms = options.refresh_ms ?? TOKEN_REVOCATION_REFRESH_MS;
  const loop: PollingLoop | undefined = refresh_ms > 0 ? pollingLoop(refresh, { idle_ms: refresh_ms, batch_ms: refresh_ms }, options.onError) : undefined;
  return {
    principalOf: (authorization, now_ms) => {
      if (!authorization?.startsWith('Bearer ')) return undefined;
      const token = verifyToken(secrets, authorization.slice('Bearer '.length).trim(), now_ms);
      return token && !revoked.has(token.tokenId) ? token : undefined;
    },
    revoke: async ({ tokenId, expires_at_ms, reason }, now_ms) => {
      await db
        .insertInto('revoked_tokens')
        .values({ token_id: tokenId, expires_at_ms, revoked_at_ms: now_ms, reason })
        .$call(ignoreDuplicates(db))
        .execute();
      revoked.add(tokenId);
    },
    refresh,
    stop: async () => loop?.stop(),
  };
}
