import type { Logger } from 'pino';

import { gatingActivities, ungate } from './ledger.ts';
import type { InventoryDb } from '../tables.ts';

/**
 * Started without Redis (REDIS_URL unset), the database serves every activity: the stock a Redis
 * gate held is taken back into the stock rows, activity by activity. The activities ungated.
 */
export async function takeBackGatedStock(db: InventoryDb, now_ms: number, log: Logger): Promise<number[]> {
  const activityIds = await gatingActivities(db);
  for (const activityId of activityIds) {
    await ungate(db, activityId, now_ms);
    log.warn({ activityId }, 'flash sale: REDIS_URL is not set; the database takes back the stock Redis was serving');
  }
  return activityIds;
}
