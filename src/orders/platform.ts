import type { BuyersTables } from '../buyers/index.ts';
import type { CartTables } from '../cart/index.ts';
import type { CatalogTables } from '../catalog/index.ts';
import type { CouponsTables } from '../coupons/index.ts';
import type { OutboxTables } from '../events/index.ts';
import type { FlashSale, InventoryTables } from '../inventory/index.ts';
import type { JobsTables } from '../jobs/index.ts';
import type { LeadersTables } from '../leaders/index.ts';
import type { Platform } from '../platform/context.ts';
import type { PointsTables } from '../points/index.ts';
import type { PromotionsTables } from '../promotions/index.ts';
import type { OrdersTables } from './tables.ts';

/**
 * What orders asks of the main database: the modules checkout and cancellation call (catalog,
 * buyers, leaders, cart, inventory, promotions, coupons, points). Orders names none of their tables; the
 * handle carries them so it can be passed to those modules' functions.
 */
export type OrdersMainTables = CatalogTables & BuyersTables & LeadersTables & CartTables & InventoryTables & PromotionsTables & CouponsTables & PointsTables & OutboxTables & JobsTables;
export type OrdersShardTables = OrdersTables & OutboxTables & JobsTables;

export interface OrdersPlatform extends Platform<OrdersMainTables, OrdersShardTables> {
  /** 秒杀 through Redis, when REDIS_URL is set; without it hot activities are served by the database. */
  flashSale?: FlashSale | undefined;
}
