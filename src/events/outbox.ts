import type { Transaction } from 'kysely';

import { newEventId } from '../platform/ids.ts';
import type { OutboxTables } from './tables.ts';

/** An event as subscribers see it. */
export interface DomainEvent<P = unknown> {
  eventId: string;
  type: string;
  aggregateId: string;
  payload: P;
  created_at_ms: number;
}

/**
 * 事务性发件箱: the event row is written in the business transaction, so the event exists
 * if and only if the change it reports was committed. The relay delivers it afterwards.
 */
export async function recordEvent<P>(
  trx: Transaction<OutboxTables>,
  event: { type: string; aggregateId: string; payload: P },
  now_ms: number,
): Promise<string> {
  const eventId = newEventId();
  await trx
    .insertInto('outbox_events')
    .values({
      event_id: eventId,
      event_type: event.type,
      aggregate_id: event.aggregateId,
      payload: JSON.stringify(event.payload),
      created_at_ms: now_ms,
      due_at_ms: now_ms,
      locked_until_ms: 0,
      locked_by: null,
      attempts: 0,
      last_error: null,
      dead_at_ms: null,
    })
    .execute();
  return eventId;
}
