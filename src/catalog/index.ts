export * from './activities.ts';
export * from './products.ts';
