import type { App } from '../../src/app.ts';
import type { Harness } from './harness.ts';

/**
 * The one way a test waits for background work: until nothing moves.
 *
 * - One harness without the channel sandbox: its app drains (relay, consumers and jobs, until a
 *   whole round does nothing).
 * - One harness with the sandbox: notifications in flight land and their follow-ups run, in
 *   rounds, since a follow-up (a refund, a query) can make the sandbox notify again.
 * - Several harnesses or apps on one set of databases: they drain in turn, and again, until the
 *   outboxes are empty. One app's drain can return while another's background pass still holds
 *   relayed rows it has not yet marked (seen on a loaded machine).
 */
export async function untilQuiet(...targets: (Harness | App)[]): Promise<void> {
  if (targets.length === 0) throw new Error('untilQuiet needs a harness or an app');
  if (targets.length === 1) {
    const only = targets[0]!;
    if (!('app' in only)) return only.drain();
    if (!only.sandbox) return only.app.drain();
    for (let round = 0; round < SANDBOX_ROUNDS; round++) {
      await only.sandbox.core.untilDelivered();
      await only.app.drain();
    }
    return;
  }
  const apps = targets.map((target) => ('app' in target ? target.app : target));
  for (let round = 0; round < MAX_TOGETHER_ROUNDS; round++) {
    await Promise.all(apps.map((app) => app.drain()));
    for (const app of apps) await app.drain();
    if ((await outboxCount(apps[0]!)) === 0) return;
  }
  throw new Error(`the apps were not quiet together after ${MAX_TOGETHER_ROUNDS} rounds`);
}

/** Rounds of sandbox deliveries and drains: a refund's notification after a payment's is the deepest chain the tests make. */
const SANDBOX_ROUNDS = 3;
/** Rounds of draining several apps together before the wait gives up. */
export const MAX_TOGETHER_ROUNDS = 50;

export async function outboxCount(app: App): Promise<number> {
  let n = 0;
  for (const db of app.databases) n += Number((await db.selectFrom('outbox_events').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
  return n;
}
