export * from './points.ts';
export type * from './tables.ts';
export { accountsWithFrozenPoints, openFreezes } from './stuck.ts';
