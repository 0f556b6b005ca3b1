export * from './runner.ts';
export type * from './tables.ts';
export { cancelDeadJobs, cancelJob, cancelJobs, deadJobCount, hasJobs, oldestDueJob_ms, waitingJobKeys } from './keys.ts';
export { jobHandlersOf } from './compose.ts';
