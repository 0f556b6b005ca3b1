export * from './runner.ts';
export type * from './tables.ts';
