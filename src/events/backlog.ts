
import { deadCount, oldestLive_ms } from '../platform/due-rows.ts';
import type { EventsDb } from './tables.ts';

/** What metrics read of this module's tables: the outbox backlog and the events set aside. */

/** When the oldest outbox event not yet delivered was written, over these databases; undefined when none waits. */
export async function oldestUndeliveredEvent_ms(databases: readonly EventsDb[]): Promise<number | undefined> {
  let oldest: number | undefined;
  for (const db of databases) {
    const created_ms = await oldestLive_ms(db, 'outbox_events', 'created_at_ms');
    if (created_ms !== undefined) oldest = Math.min(oldest ?? created_ms, created_ms);
  }
  return oldest;
}

/** Outbox events the relay gave up on after their last attempt. */
export async function deadOutboxEventCount(databases: readonly EventsDb[]): Promise<number> {
  let count = 0;
  for (const db of databases) count += await deadCount(db, 'outbox_events');
  return count;
}

/** How long "this database has no dead_letters table" is believed before asking again. */
const TABLE_CHECK_MS = 60_000;
const tableSeen = new WeakMap<EventsDb, { present: boolean; checked_at_ms: number }>();

/** Events consumers failed on and nobody replayed yet, over the databases that have the table (migration 0007). */
export async function deadLetterCount(databases: readonly EventsDb[]): Promise<number> {
  let count = 0;
  for (const db of databases) {
    if (!(await hasDeadLetterTable(db))) continue;
    const row = await db.selectFrom('dead_letters').select((eb) => eb.fn.countAll<number>().as('n')).where('replayed_at_ms', 'is', null).executeTakeFirst();
    count += Number(row?.n ?? 0);
  }
  return count;
}

async function hasDeadLetterTable(db: EventsDb): Promise<boolean> {
  const known = tableSeen.get(db);
  if (known && (known.present || Date.now() - known.checked_at_ms < TABLE_CHECK_MS)) return known.present;
  const present = (await db.introspection.getTables()).some((table) => table.name === 'dead_letters');
  tableSeen.set(db, { present, checked_at_ms: Date.now() });
  return present;
}
