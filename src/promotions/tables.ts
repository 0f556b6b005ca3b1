import type { Generated, Kysely } from 'kysely';
import type { OutboxTables } from '../events/index.ts';
import type { JobsTables } from '../jobs/index.ts';

/** The promotions module's tables; no other module names them. Amounts are BIGINT fen; times BIGINT ms since the epoch, UTC. */
export interface PromotionsTables {
  promotions: PromotionRow;
  shipping_rules: ShippingRuleRow;
}

/** The handle the promotions module's functions take (the main database): its own tables, and the outbox and jobs it writes through the events and jobs modules. */
export type PromotionsDb = Kysely<PromotionsTables & OutboxTables & JobsTables>;

export interface PromotionRow {
  id: Generated<number>;
  name: string;
  merchant_id: number | null;
  scope: string;
  rule: string;
  priority: number;
  stacking: string;
  starts_at_ms: number;
  ends_at_ms: number;
  enabled: number;
  created_at_ms: number;
  updated_at_ms: number;
}

export interface ShippingRuleRow {
  id: Generated<number>;
  merchant_id: number;
  handover: string;
  regions: string | null;
  charge: string;
  free_above_fen: number | null;
  created_at_ms: number;
}
