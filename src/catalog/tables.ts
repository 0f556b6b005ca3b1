import type { Generated, Kysely, Transaction } from 'kysely';
import type { OutboxTables } from '../events/index.ts';
import type { JobsTables } from '../jobs/index.ts';
import type { InventoryMode } from './inventory-modes.ts';
import type { PayeeChannel } from './payee-channels.ts';

/** The catalog module's tables; no other module names them. Amounts are BIGINT fen; times BIGINT ms since the epoch, UTC. */
export interface CatalogTables {
  merchants: MerchantRow;
  merchant_channel_accounts: MerchantChannelAccountRow;
  products: ProductRow;
  skus: SkuRow;
  activities: ActivityRow;
  activity_skus: ActivitySkuRow;
}

/** The handle the catalog module's functions take (the main database): its own tables, and the outbox and jobs it writes through the events and jobs modules. */
export type CatalogDb = Kysely<CatalogTables & OutboxTables & JobsTables>;
export type CatalogTransaction = Transaction<CatalogTables & OutboxTables & JobsTables>;

export interface MerchantRow {
  id: Generated<number>;
  name: string;
  created_at_ms: number;
  /** 自营: 1 for the platform's own merchant, paid into the platform's merchant number; it needs no channel accounts. */
  self_operated: Generated<number>;
}

/** A marketplace merchant's sub-merchant id at one payment channel, set by an admin. */
export interface MerchantChannelAccountRow {
  merchant_id: number;
  channel: PayeeChannel;
  /** WeChat sub_mchid, Alipay smid (直付通 sub_merchant.merchant_id), UnionPay's or CCB's merchant number (惠市宝 Mkt_Mrch_Id). */
  sub_merchant_id: string;
  created_at_ms: number;
  updated_at_ms: number;
}

export interface ProductRow {
  id: Generated<number>;
  merchant_id: number;
  title: string;
  category: string | null;
  created_at_ms: number;
  updated_at_ms: number;
}

export interface SkuRow {
  id: Generated<number>;
  product_id: number;
  merchant_id: number;
  title: string;
  list_price_fen: number;
  weight_g: number;
  created_at_ms: number;
  updated_at_ms: number;
}

export interface ActivityRow {
  id: Generated<number>;
  title: string;
  starts_at_ms: number;
  ends_at_ms: number;
  order_cutoff_at_ms: number;
  /** 'YYYY-MM-DD', the day goods reach the leaders. */
  pickup_date: string;
  inventory_mode: InventoryMode;
  /** 秒杀: 1 when the activity's stock is served from Redis (if REDIS_URL is set). */
  hot: Generated<number>;
  created_at_ms: number;
  updated_at_ms: number;
}

export interface ActivitySkuRow {
  id: Generated<number>;
  activity_id: number;
  sku_id: number;
  price_fen: number;
  /** 限购: most units one buyer may hold across live orders; null means no limit. */
  purchase_limit: number | null;
  /** Stock-linked price: the activity price holds for the first N units sold; null means all. */
  activity_price_units: number | null;
  created_at_ms: number;
  updated_at_ms: number;
}
