import SQLite from 'better-sqlite3';
import { Kysely, SqliteDialect, sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvariantViolation } from '../errors.ts';
import { compareAndSet, type StateTable } from './compare-and-set.ts';

const DOOR_TRANSITIONS = { open: ['shut'], shut: ['open', 'locked'], locked: [] } as const;
type DoorState = keyof typeof DOOR_TRANSITIONS;
const VERSIONED: StateTable<DoorState> = { table: 'doors', what: 'door', stateColumn: 'status', transitions: DOOR_TRANSITIONS, versioned: true };
const STATE_ONLY: StateTable<DoorState> = { table: 'gates', what: 'gate', stateColumn: 'state', transitions: DOOR_TRANSITIONS, versioned: false };

describe('compareAndSet', () => {
  const db = new Kysely<any>({ dialect: new SqliteDialect({ database: new SQLite(':memory:') }) });
  beforeAll(async () => {
    await sql`create table doors (id integer primary key, status text not null, version integer not null, note text)`.execute(db);
    await sql`create table gates (a integer, b integer, state text not null, primary key (a, b))`.execute(db);
    await sql`insert into doors values (1, 'open', 0, null)`.execute(db);
    await sql`insert into gates values (1, 2, 'shut'), (1, 3, 'shut')`.execute(db);
  });
  afterAll(() => db.destroy());

  it('moves the row it names from the state and version read, raising the version, and says true', async () => {
    expect(await compareAndSet(db, VERSIONED, { id: 1 }, { state: 'open', version: 0 }, 'shut', { note: 'first' })).toBe(true);
    expect(await db.selectFrom('doors').selectAll().where('id', '=', 1).executeTakeFirst()).toEqual({ id: 1, status: 'shut', version: 1, note: 'first' });
  });
  it('says false, and changes nothing, when the version or the state is no longer as read', async () => {
    expect(await compareAndSet(db, VERSIONED, { id: 1 }, { state: 'shut', version: 0 }, 'open')).toBe(false);
    expect(await compareAndSet(db, VERSIONED, { id: 1 }, { state: 'open', version: 1 }, 'shut')).toBe(false);
    expect(await compareAndSet(db, VERSIONED, { id: 2 }, { state: 'shut', version: 1 }, 'open')).toBe(false);
    expect(await db.selectFrom('doors').select(['status', 'version']).where('id', '=', 1).executeTakeFirst()).toEqual({ status: 'shut', version: 1 });
  });
  it('keeps the state under the version guard without the table listing it', async () => {
    expect(await compareAndSet(db, VERSIONED, { id: 1 }, { state: 'shut', version: 1 }, 'shut', { note: 'again' })).toBe(true);
    expect(await db.selectFrom('doors').select(['status', 'version', 'note']).where('id', '=', 1).executeTakeFirst()).toEqual({ status: 'shut', version: 2, note: 'again' });
  });
  it('refuses, as a broken invariant, a move the table does not allow or a versioned write without its version', async () => {
    await expect(compareAndSet(db, VERSIONED, { id: 1 }, { state: 'locked', version: 2 }, 'open')).rejects.toThrow(InvariantViolation);
    await expect(compareAndSet(db, VERSIONED, { id: 1 }, { state: 'open', version: 2 }, 'locked')).rejects.toThrow(InvariantViolation);
    await expect(compareAndSet(db, VERSIONED, { id: 1 }, { state: 'shut' }, 'open')).rejects.toThrow(InvariantViolation);
    await expect(compareAndSet(db, STATE_ONLY, { a: 1, b: 2 }, { state: 'shut' }, 'shut')).rejects.toThrow(InvariantViolation);
  });
  it('guards a table without a version by the state alone, on the whole key', async () => {
    expect(await compareAndSet(db, STATE_ONLY, { a: 1, b: 2 }, { state: 'shut' }, 'locked')).toBe(true);
    expect(await compareAndSet(db, STATE_ONLY, { a: 1, b: 2 }, { state: 'shut' }, 'open')).toBe(false);
    expect(await db.selectFrom('gates').select(['b', 'state']).orderBy('b').execute()).toEqual([{ b: 2, state: 'locked' }, { b: 3, state: 'shut' }]);
  });
});
