import type { Kysely, Transaction } from 'kysely';
import { dialectOf } from '../platform/db/database.ts';
import { transaction } from '../platform/db/retry.ts';

import { claimDue, completeDue, failDue, type Claimed } from '../platform/due-rows.ts';
import { pollingLoop, type PollingLoop } from '../platform/polling-loop.ts';
import { applyOnce, consumeOnce, MAX_CONSUMER_ATTEMPTS, recordDeadLetter, type Consumer } from './inbox.ts';
import type { DomainEvent } from './outbox.ts';
import type { EventsDb, EventsTables, OutboxEventRow } from './tables.ts';

export type EventHandler = (event: DomainEvent<any>) => Promise<void>;
/** A handler whose effect is rows in `db`: it runs in the transaction that records it in the inbox. */
export interface TransactionalHandler {
  db: EventsDb;
  apply: (trx: Transaction<EventsTables>, event: DomainEvent<any>) => Promise<void>;
}

/** `db` is the handle of the module whose rows the handler changes; the transaction it gets is on that handle, with the inbox row in it. */
export function inTransaction<Tables, P>(db: Kysely<Tables & EventsTables>, apply: (trx: Transaction<Tables & EventsTables>, event: DomainEvent<P>) => Promise<void>): TransactionalHandler {
  return { db: db as unknown as EventsDb, apply: apply as TransactionalHandler['apply'] };
}

/** Events claimed per database per pass. */
export const RELAY_BATCH_SIZE = 200;
/**
 * After this many failed deliveries an outbox row is set aside as dead. Consumers dead-letter
 * their own failures sooner (MAX_CONSUMER_ATTEMPTS), so this only catches a bus that never works.
 */
export const MAX_DELIVERY_ATTEMPTS = 25;
/** Consumers one bus may have; each is a durable consumer on the broker. */
export const MAX_CONSUMERS = 100;
const RELAY_IDLE_MS = 100;
/** Events committed within this long of each other are relayed in one pass. */
const RELAY_BATCH_MS = 5;

/**
 * Who consumes which event type. Each consumer has a unique name: its inbox key, its durable
 * consumer on the broker, its dead letters. A plain function handler keeps its inbox in the
 * bus's database (the main one) and must be idempotent by itself (see Consumer in inbox.ts).
 */
export class EventBus {
  private readonly list: Consumer[] = [];
  constructor(readonly db: EventsDb) {}

  subscribe(type: string, name: string, handler: EventHandler | TransactionalHandler): void {
    if (this.list.some((consumer) => consumer.name === name)) throw new Error(`consumer ${name} is subscribed twice`);
    if (this.list.length >= MAX_CONSUMERS) throw new Error(`more than ${MAX_CONSUMERS} consumers`);
    this.list.push(typeof handler === 'function' ? { name, type, db: this.db, handle: handler } : { name, type, db: handler.db, apply: handler.apply });
  }

  consumers(): readonly Consumer[] {
    return this.list;
  }

  consumersOf(type: string): Consumer[] {
    return this.list.filter((consumer) => consumer.type === type);
  }

  find(name: string): Consumer | undefined {
    return this.list.find((consumer) => consumer.name === name);
  }
}

/**
 * On SQLite every write takes the one write lock in turn, so the transactional consumers of a
 * batch commit together: one commit instead of one per event and consumer. Each still writes its
 * inbox row beside its effect. If any of them fails, the whole group rolls back and each is
 * tried on its own (with its own retries and dead letter). Server databases keep a
 * transaction per consumer and event, so a batch never holds many rows' locks at once.
 */
async function applyTogether(events: DomainEvent[], bus: EventBus, now_ms: number): Promise<Set<string>> {
  const done = new Set<string>();
  const byDb = new Map<EventsDb, { consumer: Extract<Consumer, { apply: unknown }>; event: DomainEvent }[]>();
  for (const event of events) {
    for (const consumer of bus.consumersOf(event.type)) {
      if (!('apply' in consumer) || dialectOf(consumer.db) !== 'sqlite') continue;
      const group = byDb.get(consumer.db) ?? [];
      byDb.set(consumer.db, group);
      group.push({ consumer, event });
    }
  }
  for (const [db, group] of byDb) {
    if (group.length < 2) continue;
    try {
      await transaction(db, async (trx) => {
        for (const { consumer, event } of group) await applyOnce(trx, consumer, event, now_ms);
      });
      for (const { consumer, event } of group) done.add(`${consumer.name}\u0000${event.eventId}`);
    } catch {
      // One of them failed: each is tried alone below, where its failure is counted and reported.
    }
  }
  return done;
}

export function eventOfRow(row: Pick<Claimed<OutboxEventRow>, 'event_id' | 'event_type' | 'aggregate_id' | 'payload' | 'created_at_ms'>): DomainEvent {
  return { eventId: row.event_id, type: row.event_type, aggregateId: row.aggregate_id, payload: JSON.parse(row.payload), created_at_ms: row.created_at_ms };
}

export interface RelayOptions {
  databases: readonly EventsDb[];
  bus: EventBus;
  owner: string;
  now: () => number;
  onError: (error: unknown) => void;
}

/** The embedded bus: moves committed events from each database's outbox to the consumers in this process. */
export function startRelay(options: RelayOptions): PollingLoop {
  const pass = async (): Promise<number> => {
    let delivered = 0;
    for (const db of options.databases) delivered += await relayBatch(db, options);
    return delivered;
  };
  return pollingLoop(pass, { idle_ms: RELAY_IDLE_MS, batch_ms: RELAY_BATCH_MS }, options.onError);
}

/**
 * Each consumer of each claimed event, through its inbox: one that handled the event before
 * skips it, so retrying the whole event repeats nothing. A consumer still failing on the row's
 * last attempt dead-letters the event for itself and the others go on; the same semantics as
 * the broker's consumers, with the outbox row's attempts as the count.
 */
async function relayBatch(db: EventsDb, { bus, owner, now, onError }: RelayOptions): Promise<number> {
  const rows = await claimDue<OutboxEventRow>(db, 'outbox_events', owner, now(), RELAY_BATCH_SIZE);
  const done: number[] = [];
  const events = rows.map(eventOfRow);
  const together = await applyTogether(events, bus, now());
  for (const [i, row] of rows.entries()) {
    const event = events[i]!;
    let retry = false;
    let lastError: unknown;
    for (const consumer of bus.consumersOf(event.type)) {
      if (together.has(`${consumer.name}\u0000${event.eventId}`)) continue;
      try {
        await consumeOnce(consumer, event, now());
      } catch (error) {
        onError(new Error(`consumer ${consumer.name} failed on ${event.type} ${event.eventId} (attempt ${row.attempts})`, { cause: error }));
        lastError = error;
        if (row.attempts < MAX_CONSUMER_ATTEMPTS) {
          retry = true;
          continue;
        }
        try {
          await recordDeadLetter(bus.db, consumer.name, event, row.attempts, error, now());
        } catch (deadLetterError) {
          onError(deadLetterError);
          retry = true;
        }
      }
    }
    if (retry) await failDue(db, 'outbox_events', owner, row, MAX_DELIVERY_ATTEMPTS, lastError, now());
    else done.push(row.id);
  }
  await completeDue(db, 'outbox_events', owner, done);
  return rows.length;
}
