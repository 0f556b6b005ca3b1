import { assert } from '../platform/errors.ts';
import type { JobHandler } from './runner.ts';

/** The job handlers of every module as one map; a kind two modules claim is a wiring mistake, refused at start. */
export function jobHandlersOf(...modules: Readonly<Record<string, JobHandler>>[]): Record<string, JobHandler> {
  const handlers: Record<string, JobHandler> = {};
  for (const module of modules) {
    for (const [kind, handler] of Object.entries(module)) {
      assert(!(kind in handlers), () => `two modules handle the job kind ${kind}`);
      handlers[kind] = handler;
    }
  }
  return handlers;
}
