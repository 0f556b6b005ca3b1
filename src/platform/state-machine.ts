import { assert } from './errors.ts';

/**
 * A state machine as data: every state → the states it may move to. A state with no exits is
 * terminal. The owning module writes its table (orders, payments, refunds, stock reservations);
 * this runner knows no domain. A state listed among its own exits may be rewritten in place
 * (a payment refunded in part, again).
 */
export type TransitionTable<State extends string> = { readonly [from in State]: readonly State[] };

export function canTransition<State extends string>(table: TransitionTable<State>, from: State, to: State): boolean {
  return table[from].includes(to);
}

/** A move the table does not allow is a broken invariant (a bug), never an answer to a request. */
export function assertTransition<State extends string>(table: TransitionTable<State>, from: State, to: State, what: string): void {
  assert(canTransition(table, from, to), () => `${what} may not move from ${from} to ${to}`);
}

export function isTerminal<State extends string>(table: TransitionTable<State>, state: State): boolean {
  return table[state].length === 0;
}

export function statesOf<State extends string>(table: TransitionTable<State>): State[] {
  return Object.keys(table) as State[];
}
