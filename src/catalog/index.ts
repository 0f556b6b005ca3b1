export * from './activities.ts';
export * from './products.ts';
export type * from './tables.ts';
