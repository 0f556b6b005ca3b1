import type { JobHandler } from '../jobs/index.ts';
import type { PaymentCentre } from '../payments/index.ts';
import type { ConsistencyPlatform } from './check.ts';
import { reconcileJobHandler, RECONCILE_JOB, type PassHooks } from './pass.ts';

export interface ConsistencyDeps {
  platform: ConsistencyPlatform;
  payments: PaymentCentre;
  /** How long after one pass the next is due. */
  interval_ms: number;
  hooks?: PassHooks;
}

/** The reconciler's job: one pass, which schedules the next. */
export function consistencyJobs(deps: ConsistencyDeps): Record<string, JobHandler> {
  return { [RECONCILE_JOB]: reconcileJobHandler(deps.platform, deps.payments, deps.interval_ms, deps.hooks) };
}
