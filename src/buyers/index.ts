export * from './buyers.ts';
export type * from './tables.ts';
