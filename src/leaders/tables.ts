import type { Generated, Kysely } from 'kysely';
import type { OutboxTables } from '../events/index.ts';
import type { JobsTables } from '../jobs/index.ts';

/** The leaders module's tables; no other module names them. Amounts are BIGINT fen; times BIGINT ms since the epoch, UTC. */
export interface LeadersTables {
  leaders: LeaderRow;
}

/** The handle the leaders module's functions take (the main database): its own tables, and the outbox and jobs it writes through the events and jobs modules. */
export type LeadersDb = Kysely<LeadersTables & OutboxTables & JobsTables>;

export interface LeaderRow {
  id: Generated<number>;
  name: string;
  community: string;
  address: string;
  created_at_ms: number;
}
