import type { Kysely } from 'kysely';
import type { AccessTables } from './access/index.ts';
import type { BuyersTables } from './buyers/index.ts';
import type { CartTables } from './cart/index.ts';
import type { CatalogTables } from './catalog/index.ts';
import type { ConsistencyTables } from './consistency/index.ts';
import type { CouponsTables } from './coupons/index.ts';
import type { EventsTables } from './events/index.ts';
import type { InventoryTables } from './inventory/index.ts';
import type { JobsTables } from './jobs/index.ts';
import type { LeadersTables } from './leaders/index.ts';
import type { OrdersTables } from './orders/index.ts';
import type { PaymentsMainTables, PaymentsShardTables } from './payments/index.ts';
import type { PointsTables } from './points/index.ts';
import type { PromotionsTables } from './promotions/index.ts';

/** The main database: every module's tables but the order side. Events and jobs are on every database. */
export type MainTables = CatalogTables & BuyersTables & LeadersTables & InventoryTables & CartTables & PromotionsTables & CouponsTables
  & PointsTables & PaymentsMainTables & ConsistencyTables & AccessTables & EventsTables & JobsTables;

/** An order shard (分库): orders and their payments, by buyer. */
export type ShardTables = OrdersTables & PaymentsShardTables & EventsTables & JobsTables;

export type MainDb = Kysely<MainTables>;
export type ShardDb = Kysely<ShardTables>;
