export * from './leaders.ts';
export type * from './tables.ts';
