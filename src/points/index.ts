export * from './points.ts';
export type * from './tables.ts';
