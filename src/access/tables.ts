import type { Kysely } from 'kysely';
import type { OutboxTables } from '../events/index.ts';
import type { JobsTables } from '../jobs/index.ts';
/** The access module's tables; no other module names them. Amounts are BIGINT fen; times BIGINT ms since the epoch, UTC. */
export interface AccessTables {
  revoked_tokens: RevokedTokenRow;
}

/** The handle the access module's functions take (the main database): its own tables, and the outbox and jobs it writes through the events and jobs modules. */
export type AccessDb = Kysely<AccessTables & OutboxTables & JobsTables>;

export interface RevokedTokenRow {
  token_id: string;
  /** When the token would have expired; the row can be dropped after. */
  expires_at_ms: number;
  revoked_at_ms: number;
  reason: string;
}
