import type { Transaction } from 'kysely';
import { dialectOf } from '../platform/db/database.ts';
import { STREAM_MAX_AGE_MS } from './broker-settings.ts';
import { transact } from '../platform/db/retry.ts';

import { affected, ignoreDuplicates } from '../platform/db/sql.ts';
import type { DomainEvent } from './outbox.ts';
import type { EventsDb, EventsTables } from './tables.ts';

/**
 * A consumer's effect, in one of two kinds:
 * - `apply` runs inside a transaction on `db` that also writes the inbox row: the effect and
 *   "handled" commit together, so however often the event arrives, the effect happens once.
 *   For consumers whose effect is rows in one database (every stock, cart, coupon and points
 *   consumer: those modules live in the main database).
 * - `handle` runs outside any transaction (it calls a payment channel or Redis, and a
 *   transaction is never held across a network call); the inbox row is written after it
 *   succeeds. A crash between the two repeats the effect, so such a handler must be
 *   idempotent by itself (it keys its work by the event, e.g. a refund number derived from it).
 */
export type Consumer =
  | { name: string; type: string; db: EventsDb; apply: (trx: Transaction<EventsTables>, event: DomainEvent<any>) => Promise<void> }
  | { name: string; type: string; db: EventsDb; handle: (event: DomainEvent<any>) => Promise<void> };

/** A consumer failing on one event is tried this many times, then the event is dead-lettered. */
export const MAX_CONSUMER_ATTEMPTS = 10;
/** Longest error text kept on a dead letter. */
const MAX_ERROR_LENGTH = 2000;

export type Delivery = 'applied' | 'duplicate';

/** Runs the consumer on the event unless its inbox says it already did. */
export async function consumeOnce(consumer: Consumer, event: DomainEvent, now_ms: number): Promise<Delivery> {
  if ('apply' in consumer) return transact(consumer.db, (trx) => applyOnce(trx, consumer, event, now_ms));
  if (await handled(consumer.db, consumer.name, event.eventId)) return 'duplicate';
  await consumer.handle(event);
  await consumer.db
    .insertInto('event_inbox')
    .values({ consumer: consumer.name, event_id: event.eventId, handled_at_ms: now_ms })
    .$call(ignoreDuplicates(consumer.db))
    .execute();
  return 'applied';
}

/** A transactional consumer's effect and its inbox row, inside the caller's transaction. */
export async function applyOnce(trx: Transaction<EventsTables>, consumer: Extract<Consumer, { apply: unknown }>, event: DomainEvent, now_ms: number): Promise<Delivery> {
  // The inbox row first: a second delivery racing this one waits on its key, then finds it taken.
  const claimed = await trx
    .insertInto('event_inbox')
    .values({ consumer: consumer.name, event_id: event.eventId, handled_at_ms: now_ms })
    .$call(ignoreDuplicates(trx))
    .executeTakeFirst();
  if (affected(claimed) === 0) return 'duplicate';
  await consumer.apply(trx, event);
  return 'applied';
}

/**
 * An inbox row only has to outlive every way its event can come again: the stream keeps events
 * for STREAM_MAX_AGE_MS (and the in-process outbox deletes them once delivered), so rows a day
 * older than that are pruned.
 */
export const INBOX_RETENTION_MS = STREAM_MAX_AGE_MS + 24 * 3600_000;
/** Most inbox rows one prune deletes; the next pass takes the rest. */
export const MAX_PRUNED_PER_PASS = 10_000;

/** Deletes up to `limit` inbox rows handled before `before_ms`, oldest first; returns how many. */
export async function pruneInbox(db: EventsDb, before_ms: number, limit = MAX_PRUNED_PER_PASS): Promise<number> {
  if (dialectOf(db) === 'mysql') {
    return affected(await db.deleteFrom('event_inbox').where('handled_at_ms', '<', before_ms).orderBy('handled_at_ms').limit(limit).executeTakeFirst());
  }
  // PostgreSQL and SQLite have no DELETE … LIMIT: the oldest keys are chosen by a subquery.
  return affected(
    await db
      .deleteFrom('event_inbox')
      .where((eb) =>
        eb(
          eb.refTuple('consumer', 'event_id'),
          'in',
          eb.selectFrom('event_inbox as old').select(['old.consumer', 'old.event_id']).where('old.handled_at_ms', '<', before_ms).orderBy('old.handled_at_ms').limit(limit).$asTuple('consumer', 'event_id'),
        ),
      )
      .executeTakeFirst(),
  );
}

export async function handled(db: EventsDb, consumer: string, eventId: string): Promise<boolean> {
  const row = await db.selectFrom('event_inbox').select('event_id').where('consumer', '=', consumer).where('event_id', '=', eventId).executeTakeFirst();
  return row !== undefined;
}

export function errorText(error: unknown): string {
  const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return text.slice(0, MAX_ERROR_LENGTH);
}

/** Sets the event aside for this consumer; a second report of the same pair is ignored. */
export async function recordDeadLetter(db: EventsDb, consumer: string, event: DomainEvent, attempts: number, error: unknown, now_ms: number): Promise<void> {
  await db
    .insertInto('dead_letters')
    .values({
      consumer,
      event_id: event.eventId,
      event_type: event.type,
      aggregate_id: event.aggregateId,
      payload: JSON.stringify(event.payload),
      event_created_at_ms: event.created_at_ms,
      attempts,
      last_error: errorText(error),
      dead_at_ms: now_ms,
      replayed_at_ms: null,
    })
    .$call(ignoreDuplicates(db))
    .execute();
}
