export * from './token-gate.ts';
export type * from './tables.ts';
