export * from './points.ts';
export type * from './tables.ts';
export { accountsWithFrozenPoints, unsettledFreezes } from './stuck.ts';
