import type { Generated, Kysely, Transaction } from 'kysely';
import type { OutboxTables } from '../events/index.ts';
import type { JobsTables } from '../jobs/index.ts';
import type { Movement } from './movements.ts';

/** The points module's tables; no other module names them. Amounts are BIGINT fen; times BIGINT ms since the epoch, UTC. */
export interface PointsTables {
  points_accounts: PointsAccountRow;
  points_journal: PointsJournalRow;
}

/** The handle the points module's functions take (the main database): its own tables, and the outbox and jobs it writes through the events and jobs modules. */
export type PointsDb = Kysely<PointsTables & OutboxTables & JobsTables>;
export type PointsTransaction = Transaction<PointsTables & OutboxTables & JobsTables>;

export interface PointsAccountRow {
  buyer_id: number;
  balance: number;
  frozen: number;
  updated_at_ms: number;
}

export interface PointsJournalRow {
  id: Generated<number>;
  buyer_id: number;
  movement: Movement;
  points: number;
  order_no: string | null;
  dedupe_key: string;
  balance_after: number;
  frozen_after: number;
  note: string | null;
  created_at_ms: number;
}
