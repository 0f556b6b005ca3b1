/**
 * 秒杀 through Redis: hot activities' stock is served from Redis, the database brought in line
 * through the outbox (order.placed) and reconciled. The module's face; see reserve.ts for the
 * order of steps that keeps the two from ever overselling.
 */
export { closeFlashSale, keysOf, openFlashSale, REDIS_COMMAND_TIMEOUT_MS, type FlashSale } from './redis.ts';
export { applyPendingReservations, recordPendingReservations, ungate, gatingActivities, type FlashSaleItem } from './ledger.ts';
export { adjustFlashSaleStock, ensureLoaded, flashSaleHotChanged, isLoaded, unloadActivity } from './load.ts';
export { flashSaleAvailable, grantFlashSale, releaseFlashSaleReservations, MAX_RESERVE_ATTEMPTS } from './reserve.ts';
export { finishFlashSaleReturns, MAX_RETURNS_PER_PASS, returnFlashSaleStock } from './returns.ts';
export { FLASH_SALE_UPKEEP_INTERVAL_MS, flashSaleUpkeep, reconcileActivity, startFlashSaleUpkeep, type DriftRepair, type UpkeepReport } from './reconcile.ts';
export { takeBackGatedStock } from './without-redis.ts';
