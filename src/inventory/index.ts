export * from './reservations.ts';
export * from './flash-sale/index.ts';
export type * from './tables.ts';
