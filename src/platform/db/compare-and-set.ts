import type { Kysely } from 'kysely';
import { assert } from '../errors.ts';
import { assertTransition, type TransitionTable } from '../state-machine.ts';
import { affected } from './sql.ts';

/**
 * A table whose rows move through a state machine, as its owning module describes it: platform
 * names no table. `versioned` says the table has a `version` column that every write raises;
 * without one the write is guarded by the state alone.
 */
export interface StateTable<State extends string> {
  table: string;
  /** What a row is, for messages: "order", "payment". */
  what: string;
  stateColumn: string;
  transitions: TransitionTable<State>;
  versioned: boolean;
}

/** The state (and, on a versioned table, the version) the writer read the row in. */
export interface Expected<State extends string> {
  state: State;
  version?: number;
}

/**
 * The one compare-and-set on a state column:
 *   UPDATE <table> SET <state> = to, version = expected + 1, …changes
 *   WHERE <key> AND <state> = expected.state AND version = expected.version
 * (the version parts only on a versioned table). The move is checked against the table first:
 * one it does not allow is a bug and fails an assertion. A write that keeps the state is allowed
 * when the version guards it or the table lists the state among its own exits.
 *
 * The outcome convention, everywhere: `true` when this write moved the row, `false` when the row
 * was no longer as read (another writer got there first) or is not there. Losing is an outcome,
 * not an exception; the owner decides what it means (orders answer `order_state_conflict`,
 * a reservation's loser leaves the units alone).
 */
export async function compareAndSet<State extends string>(
  db: Kysely<any>,
  target: StateTable<State>,
  key: Readonly<Record<string, string | number>>,
  expected: Expected<State>,
  to: State,
  changes: Readonly<Record<string, unknown>> = {},
): Promise<boolean> {
  const keyColumns = Object.entries(key);
  assert(keyColumns.length > 0, () => `a compare-and-set on ${target.table} names its row`);
  assert(!(target.versioned && expected.version === undefined), () => `a compare-and-set on ${target.table} names the version it read`);
  const keepsStateUnderVersion = to === expected.state && target.versioned;
  if (!keepsStateUnderVersion) assertTransition(target.transitions, expected.state, to, target.what);
  let query = db.updateTable(target.table).set({
    ...changes,
    [target.stateColumn]: to,
    ...(target.versioned ? { version: expected.version! + 1 } : {}),
  });
  for (const [column, value] of keyColumns) query = query.where(column, '=', value);
  query = query.where(target.stateColumn, '=', expected.state);
  if (target.versioned) query = query.where('version', '=', expected.version!);
  return affected(await query.executeTakeFirst()) === 1;
}
