export * from './promotions.ts';
export type * from './tables.ts';
