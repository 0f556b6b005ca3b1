import type { Generated, Kysely, Transaction } from 'kysely';
import type { OutboxTables } from '../events/index.ts';
import type { JobsTables } from '../jobs/index.ts';
import type { CouponState } from './coupon-state.ts';

/** The coupons module's tables; no other module names them. Amounts are BIGINT fen; times BIGINT ms since the epoch, UTC. */
export interface CouponsTables {
  coupon_templates: CouponTemplateRow;
  coupons: CouponRow;
  coupon_issuance: CouponIssuanceRow;
}

/** The handle the coupons module's functions take (the main database): its own tables, and the outbox and jobs it writes through the events and jobs modules. */
export type CouponsDb = Kysely<CouponsTables & OutboxTables & JobsTables>;
export type CouponsTransaction = Transaction<CouponsTables & OutboxTables & JobsTables>;

export interface CouponTemplateRow {
  id: Generated<number>;
  name: string;
  issuer_merchant_id: number | null;
  scope: string;
  rule: string;
  valid_from_ms: number;
  valid_until_ms: number;
  per_buyer_limit: number;
  total_limit: number | null;
  issued: number;
  created_at_ms: number;
}

export interface CouponRow {
  id: Generated<number>;
  template_id: number;
  buyer_id: number;
  state: CouponState;
  order_no: string | null;
  issued_at_ms: number;
  updated_at_ms: number;
}

export interface CouponIssuanceRow {
  template_id: number;
  buyer_id: number;
  issued: number;
}
