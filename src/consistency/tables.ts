import type { Generated, Kysely } from 'kysely';
import type { OutboxTables } from '../events/index.ts';
import type { JobsTables } from '../jobs/index.ts';

/** The consistency module's tables; no other module names them. Amounts are BIGINT fen; times BIGINT ms since the epoch, UTC. */
export interface ConsistencyTables {
  consistency_repairs: ConsistencyRepairRow;
}

/** The handle the consistency module's functions take (the main database): its own tables, and the outbox and jobs it writes through the events and jobs modules. */
export type ConsistencyDb = Kysely<ConsistencyTables & OutboxTables & JobsTables>;

/** One repair the consistency reconciler made: which check found what, and what was done. */
export interface ConsistencyRepairRow {
  id: Generated<number>;
  check_name: string;
  /** What was repaired: an order number, a pay number, … */
  item_key: string;
  action: string;
  detail: string | null;
  repaired_at_ms: number;
}
