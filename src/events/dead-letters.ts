
import { AppError } from '../platform/errors.ts';
import { consumeOnce, errorText } from './inbox.ts';
import type { EventBus } from './relay.ts';
import type { EventsDb } from './tables.ts';

/** Dead letters listed per request, at most. */
export const MAX_DEAD_LETTERS_PAGE = 100;

export interface DeadLetter {
  id: number;
  consumer: string;
  eventId: string;
  eventType: string;
  aggregateId: string;
  payload: unknown;
  event_created_at_ms: number;
  attempts: number;
  lastError: string | null;
  dead_at_ms: number;
  replayed_at_ms: number | null;
}

type Row = Awaited<ReturnType<typeof selectRows>>[number];
function selectRows(db: EventsDb) {
  return db.selectFrom('dead_letters').selectAll().execute();
}

function toDeadLetter(row: Row): DeadLetter {
  return {
    id: row.id,
    consumer: row.consumer,
    eventId: row.event_id,
    eventType: row.event_type,
    aggregateId: row.aggregate_id,
    payload: JSON.parse(row.payload),
    event_created_at_ms: row.event_created_at_ms,
    attempts: row.attempts,
    lastError: row.last_error,
    dead_at_ms: row.dead_at_ms,
    replayed_at_ms: row.replayed_at_ms,
  };
}

/** Newest first; `open` ones wait for a replay, `replayed` ones were handled by one. */
export async function listDeadLetters(db: EventsDb, filter: { state: 'open' | 'replayed' | 'all'; consumer?: string | undefined; limit: number }): Promise<DeadLetter[]> {
  let query = db.selectFrom('dead_letters').selectAll().orderBy('id', 'desc').limit(Math.min(filter.limit, MAX_DEAD_LETTERS_PAGE));
  if (filter.state === 'open') query = query.where('replayed_at_ms', 'is', null);
  if (filter.state === 'replayed') query = query.where('replayed_at_ms', 'is not', null);
  if (filter.consumer) query = query.where('consumer', '=', filter.consumer);
  return (await query.execute()).map(toDeadLetter);
}

/**
 * Runs the consumer on the dead event again, here and now, through its inbox (so a replay of an
 * event the consumer meanwhile handled changes nothing). Success marks the letter replayed;
 * failure keeps it open with the new error and one more attempt.
 */
export async function replayDeadLetter(bus: EventBus, id: number, now_ms: number): Promise<{ deadLetter: DeadLetter; outcome: 'applied' | 'duplicate' | 'already_replayed' }> {
  const row = await bus.db.selectFrom('dead_letters').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) throw new AppError('not_found', { message: 'No such dead letter.' });
  if (row.replayed_at_ms !== null) return { deadLetter: toDeadLetter(row), outcome: 'already_replayed' };
  const consumer = bus.find(row.consumer);
  if (!consumer) throw new AppError('event_replay_failed', { message: `No consumer named ${row.consumer} runs here any more.` });
  const letter = toDeadLetter(row);
  try {
    const outcome = await consumeOnce(consumer, { eventId: letter.eventId, type: letter.eventType, aggregateId: letter.aggregateId, payload: letter.payload, created_at_ms: letter.event_created_at_ms }, now_ms);
    await bus.db.updateTable('dead_letters').set({ replayed_at_ms: now_ms }).where('id', '=', id).where('replayed_at_ms', 'is', null).execute();
    return { deadLetter: { ...letter, replayed_at_ms: now_ms }, outcome };
  } catch (error) {
    await bus.db.updateTable('dead_letters').set({ attempts: row.attempts + 1, last_error: errorText(error) }).where('id', '=', id).execute();
    throw new AppError('event_replay_failed', { message: `The consumer failed again: ${errorText(error)}`.slice(0, 500) });
  }
}
