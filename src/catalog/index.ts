export * from './activities.ts';
export * from './merchants.ts';
export * from './payee-channels.ts';
export * from './products.ts';
export type * from './tables.ts';
