import type { Generated, Kysely, Transaction } from 'kysely';

/** The outbox: events written in the transaction of the change they report; no other module names it. Amounts are BIGINT fen; times BIGINT ms since the epoch, UTC. */
export interface OutboxTables {
  outbox_events: OutboxEventRow;
}

/** What consumers keep: the events each has handled, and those it gave up on. */
export interface ConsumerTables {
  event_inbox: EventInboxRow;
  dead_letters: DeadLetterRow;
}

/** The events module's tables, on every database: a module writes its events in its own transaction. */
export type EventsTables = OutboxTables & ConsumerTables;
export type EventsDb = Kysely<EventsTables>;

export interface OutboxEventRow {
  id: Generated<number>;
  event_id: string;
  event_type: string;
  aggregate_id: string;
  payload: string;
  created_at_ms: number;
  due_at_ms: number;
  locked_until_ms: number;
  locked_by: string | null;
  attempts: number;
  last_error: string | null;
  dead_at_ms: number | null;
}

/** A consumer handled this event; written in the transaction of the consumer's effect. */
export interface EventInboxRow {
  consumer: string;
  event_id: string;
  handled_at_ms: number;
}

/** An event a consumer failed on after its last attempt, kept for an admin to replay. */
export interface DeadLetterRow {
  id: Generated<number>;
  consumer: string;
  event_id: string;
  event_type: string;
  aggregate_id: string;
  payload: string;
  event_created_at_ms: number;
  attempts: number;
  last_error: string | null;
  dead_at_ms: number;
  replayed_at_ms: number | null;
}
