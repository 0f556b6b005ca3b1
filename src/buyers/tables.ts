import type { Generated, Kysely } from 'kysely';
import type { OutboxTables } from '../events/index.ts';
import type { JobsTables } from '../jobs/index.ts';

/** The buyers module's tables; no other module names them. Amounts are BIGINT fen; times BIGINT ms since the epoch, UTC. */
export interface BuyersTables {
  buyers: BuyerRow;
}

/** The handle the buyers module's functions take (the main database): its own tables, and the outbox and jobs it writes through the events and jobs modules. */
export type BuyersDb = Kysely<BuyersTables & OutboxTables & JobsTables>;

export interface BuyerRow {
  id: Generated<number>;
  name: string;
  member_level: number;
  created_at_ms: number;
}
