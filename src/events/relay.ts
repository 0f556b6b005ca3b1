import type { Db } from '../platform/db/database.ts';
import { claimDue, completeDue, failDue } from '../platform/due-rows.ts';
import { pollingLoop, type PollingLoop } from '../platform/polling-loop.ts';
import type { DomainEvent } from './outbox.ts';

export type EventHandler = (event: DomainEvent<any>) => Promise<void>;

/** Events claimed per database per pass. */
export const RELAY_BATCH_SIZE = 200;
/** After this many failed deliveries an event is set aside as dead for an admin to see. */
export const MAX_DELIVERY_ATTEMPTS = 25;
const RELAY_IDLE_MS = 100;
/** Events committed within this long of each other are relayed in one pass. */
const RELAY_BATCH_MS = 5;

/**
 * The in-process bus: subscribers by event type. Delivery is at least once, so every
 * handler must be idempotent (each checks the state it would change before changing it).
 */
export class EventBus {
  private readonly handlers = new Map<string, { name: string; handle: EventHandler }[]>();

  subscribe(type: string, name: string, handle: EventHandler): void {
    const list = this.handlers.get(type) ?? [];
    list.push({ name, handle });
    this.handlers.set(type, list);
  }

  async deliver(event: DomainEvent): Promise<void> {
    for (const { name, handle } of this.handlers.get(event.type) ?? []) {
      try {
        await handle(event);
      } catch (error) {
        throw new Error(`subscriber ${name} failed on ${event.type} ${event.eventId}: ${(error as Error)?.message ?? error}`, { cause: error });
      }
    }
  }
}

export interface RelayOptions {
  databases: readonly Db[];
  bus: EventBus;
  owner: string;
  now: () => number;
  onError: (error: unknown) => void;
}

/** Moves committed events from each database's outbox to the bus. */
export function startRelay(options: RelayOptions): PollingLoop {
  const pass = async (): Promise<number> => {
    let delivered = 0;
    for (const db of options.databases) delivered += await relayBatch(db, options);
    return delivered;
  };
  return pollingLoop(pass, { idle_ms: RELAY_IDLE_MS, batch_ms: RELAY_BATCH_MS }, options.onError);
}

async function relayBatch(db: Db, { bus, owner, now, onError }: RelayOptions): Promise<number> {
  const rows = await claimDue(db, 'outbox_events', owner, now(), RELAY_BATCH_SIZE);
  const done: number[] = [];
  for (const row of rows) {
    const event: DomainEvent = {
      eventId: row.event_id,
      type: row.event_type,
      aggregateId: row.aggregate_id,
      payload: JSON.parse(row.payload),
      created_at_ms: row.created_at_ms,
    };
    try {
      await bus.deliver(event);
      done.push(row.id);
    } catch (error) {
      onError(error);
      await failDue(db, 'outbox_events', owner, row, MAX_DELIVERY_ATTEMPTS, error, now());
    }
  }
  await completeDue(db, 'outbox_events', owner, done);
  return rows.length;
}
