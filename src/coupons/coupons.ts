import { sql, type Transaction } from 'kysely';
import { z } from 'zod';
import { MAX_RULE_AMOUNT_FEN, type Coupon } from '../pricing/index.ts';
import { scopeSchema } from '../promotions/index.ts';

import { transaction } from '../platform/db/retry.ts';

import { affected, ignoreDuplicates, insertReturningId } from '../platform/db/sql.ts';
import { AppError } from '../platform/errors.ts';

/**
 * Coupons: templates, and the coupons issued from them to buyers. A coupon is available,
 * locked by one unpaid order, or used by a paid one; locked → available again when that
 * order is cancelled or times out (an expired coupon stays expired: validity is the template's).
 */
import { COUPON_STATES, type CouponState } from './coupon-state.ts';
import type { CouponsDb, CouponsTransaction } from './tables.ts';
export { COUPON_STATES, type CouponState };
export const MAX_COUPONS_PER_ORDER = 5;
export const MAX_BUYERS_PER_ISSUE = 500;
export const MAX_COUPONS_LISTED = 200;

const fen = z.number().int().min(0).max(MAX_RULE_AMOUNT_FEN, `at most MAX_RULE_AMOUNT_FEN (${MAX_RULE_AMOUNT_FEN} fen)`);
export const couponTemplateInput = z
  .object({
    name: z.string().trim().min(1).max(200),
    issuerMerchantId: z.number().int().positive().optional(),
    scope: scopeSchema,
    rule: z.discriminatedUnion('kind', [
      z.object({ kind: z.literal('fixed'), off_fen: fen.min(1), threshold_fen: fen }).strict(),
      z.object({ kind: z.literal('percent'), discount_bp: z.number().int().min(1).max(10_000), cap_fen: fen.min(1), threshold_fen: fen }).strict(),
    ]),
    validFrom: z.iso.datetime(),
    validUntil: z.iso.datetime(),
    perBuyerLimit: z.number().int().min(1).max(100).default(1),
    totalLimit: z.number().int().min(1).max(100_000_000).optional(),
  })
  .strict();
export type CouponTemplateInput = z.infer<typeof couponTemplateInput>;

export async function createCouponTemplate(db: CouponsDb, input: CouponTemplateInput, now_ms: number): Promise<{ id: number }> {
  const valid_from_ms = Date.parse(input.validFrom);
  const valid_until_ms = Date.parse(input.validUntil);
  if (valid_until_ms <= valid_from_ms) throw new AppError('invalid_field', { field: 'validUntil', message: 'validUntil must be after validFrom.' });
  const id = await insertReturningId(
    db,
    db.insertInto('coupon_templates').values({
      name: input.name,
      issuer_merchant_id: input.issuerMerchantId ?? null,
      scope: JSON.stringify(input.scope),
      rule: JSON.stringify(input.rule),
      valid_from_ms,
      valid_until_ms,
      per_buyer_limit: input.perBuyerLimit,
      total_limit: input.totalLimit ?? null,
      issued: 0,
      created_at_ms: now_ms,
    }),
  );
  return { id };
}

export async function listCouponTemplates(db: CouponsDb, limit: number) {
  const rows = await db.selectFrom('coupon_templates').selectAll().orderBy('id', 'desc').limit(limit).execute();
  return rows.map((r) => ({
    id: r.id,
    name: r.name,
    issuerMerchantId: r.issuer_merchant_id,
    scope: JSON.parse(r.scope),
    rule: JSON.parse(r.rule),
    validFrom: new Date(r.valid_from_ms).toISOString(),
    validUntil: new Date(r.valid_until_ms).toISOString(),
    perBuyerLimit: r.per_buyer_limit,
    totalLimit: r.total_limit,
    issued: r.issued,
  }));
}

export type IssueRefusal = 'template_not_found' | 'per_buyer_limit' | 'sold_out';

/** Issues one coupon of the template to each buyer, within the per-buyer and total limits. */
export async function issueCoupons(
  db: CouponsDb,
  templateId: number,
  buyerIds: readonly number[],
  now_ms: number,
): Promise<{ issued: { buyerId: number; couponId: number }[]; refused: { buyerId: number; reason: IssueRefusal }[] }> {
  const issued: { buyerId: number; couponId: number }[] = [];
  const refused: { buyerId: number; reason: IssueRefusal }[] = [];
  // No such template is no issue at all, not a list of refusals.
  if (!(await db.selectFrom('coupon_templates').select('id').where('id', '=', templateId).executeTakeFirst())) throw new AppError('coupon_template_not_found');
  for (const buyerId of buyerIds.slice(0, MAX_BUYERS_PER_ISSUE)) {
    const outcome = await transaction(db, async (trx) => {
      const template = await trx.selectFrom('coupon_templates').select(['per_buyer_limit']).where('id', '=', templateId).executeTakeFirst();
      if (!template) return 'template_not_found' as const;
      await trx.insertInto('coupon_issuance').values({ template_id: templateId, buyer_id: buyerId, issued: 0 }).$call(ignoreDuplicates(trx)).execute();
      const mine = await trx
        .updateTable('coupon_issuance')
        .set({ issued: sql`issued + 1` })
        .where('template_id', '=', templateId)
        .where('buyer_id', '=', buyerId)
        .where('issued', '<', template.per_buyer_limit)
        .executeTakeFirst();
      if (affected(mine) === 0) return 'per_buyer_limit' as const;
      const total = await trx
        .updateTable('coupon_templates')
        .set({ issued: sql`issued + 1` })
        .where('id', '=', templateId)
        .where((eb) => eb.or([eb('total_limit', 'is', null), eb('issued', '<', eb.ref('total_limit'))]))
        .executeTakeFirst();
      if (affected(total) === 0) throw new SoldOut();
      return insertReturningId(
        trx,
        trx.insertInto('coupons').values({ template_id: templateId, buyer_id: buyerId, state: 'available', order_no: null, issued_at_ms: now_ms, updated_at_ms: now_ms }),
      );
    }).catch((error) => {
      if (error instanceof SoldOut) return 'sold_out' as const;
      throw error;
    });
    if (typeof outcome === 'number') issued.push({ buyerId, couponId: outcome });
    else refused.push({ buyerId, reason: outcome });
  }
  return { issued, refused };
}

/** Rolls back the per-buyer count when the template has none left. */
class SoldOut extends Error {}

export interface BuyerCoupon {
  couponId: number;
  templateId: number;
  name: string;
  state: CouponState;
  orderNo: string | null;
  expired: boolean;
  coupon: Coupon;
}

async function loadCoupons(db: CouponsDb | CouponsTransaction, buyerId: number, couponIds: readonly number[] | 'all', now_ms: number): Promise<BuyerCoupon[]> {
  let query = db
    .selectFrom('coupons as c')
    .innerJoin('coupon_templates as t', 't.id', 'c.template_id')
    .select(['c.id', 'c.template_id', 'c.state', 'c.order_no', 't.name', 't.issuer_merchant_id', 't.scope', 't.rule', 't.valid_from_ms', 't.valid_until_ms'])
    .where('c.buyer_id', '=', buyerId);
  if (couponIds !== 'all') {
    if (couponIds.length === 0) return [];
    query = query.where('c.id', 'in', [...couponIds]);
  }
  const rows = await query.orderBy('c.id', 'desc').limit(MAX_COUPONS_LISTED).execute();
  return rows.map((r) => ({
    couponId: r.id,
    templateId: r.template_id,
    name: r.name,
    state: r.state as BuyerCoupon['state'],
    orderNo: r.order_no,
    expired: now_ms >= r.valid_until_ms,
    coupon: {
      couponId: String(r.id),
      templateId: String(r.template_id),
      issuer: r.issuer_merchant_id === null ? { kind: 'platform' } : { kind: 'merchant', merchantId: r.issuer_merchant_id },
      scope: JSON.parse(r.scope),
      rule: JSON.parse(r.rule),
      valid_from_ms: r.valid_from_ms,
      valid_until_ms: r.valid_until_ms,
    },
  }));
}

export function buyerCoupons(db: CouponsDb, buyerId: number, now_ms: number): Promise<BuyerCoupon[]> {
  return loadCoupons(db, buyerId, 'all', now_ms);
}

/**
 * The coupons a buyer chose, for pricing. Each must be theirs and available, or already
 * locked by this very order (a resumed checkout). Refuses with `coupon_unavailable` naming it.
 */
export async function couponsToUse(db: CouponsDb, buyerId: number, couponIds: readonly number[], orderNo: string | undefined, now_ms: number): Promise<Coupon[]> {
  const found = new Map((await loadCoupons(db, buyerId, couponIds, now_ms)).map((buyerCoupon) => [buyerCoupon.couponId, buyerCoupon]));
  return couponIds.map((id, i) => {
    const buyerCoupon = found.get(id);
    const usable = buyerCoupon && (buyerCoupon.state === 'available' || (buyerCoupon.state === 'locked' && orderNo !== undefined && buyerCoupon.orderNo === orderNo));
    if (!usable) throw new AppError('coupon_unavailable', { field: `couponIds.${i}` });
    return buyerCoupon.coupon;
  });
}

/** 优惠锁定: available → locked by the order, each by compare-and-set; idempotent for that order. */
export async function lockCoupons(trx: CouponsTransaction, buyerId: number, couponIds: readonly number[], orderNo: string, now_ms: number): Promise<void> {
  // Locked in id order, like stock rows, so two checkouts never wait on each other in a circle.
  for (const id of [...couponIds].sort((a, b) => a - b)) {
    const locked = await trx
      .updateTable('coupons')
      .set({ state: 'locked', order_no: orderNo, updated_at_ms: now_ms })
      .where('id', '=', id)
      .where('buyer_id', '=', buyerId)
      .where('state', '=', 'available')
      .executeTakeFirst();
    if (affected(locked) === 1) continue;
    const mine = await trx.selectFrom('coupons').select('id').where('id', '=', id).where('order_no', '=', orderNo).executeTakeFirst();
    if (!mine) throw new AppError('coupon_unavailable', { field: `couponIds.${couponIds.indexOf(id)}` });
  }
}

/** At payment: the order's locked coupons are used. Safe to repeat. */
export async function useCoupons(db: CouponsDb | CouponsTransaction, orderNo: string, now_ms: number): Promise<number> {
  const result = await db.updateTable('coupons').set({ state: 'used', updated_at_ms: now_ms }).where('order_no', '=', orderNo).where('state', '=', 'locked').executeTakeFirst();
  return affected(result);
}

/** At cancel, timeout or a failed checkout: the order's locked coupons are the buyer's again. Safe to repeat. */
export async function returnCoupons(db: CouponsDb | CouponsTransaction, orderNo: string, now_ms: number): Promise<number> {
  const result = await db
    .updateTable('coupons')
    .set({ state: 'available', order_no: null, updated_at_ms: now_ms })
    .where('order_no', '=', orderNo)
    .where('state', '=', 'locked')
    .executeTakeFirst();
  return affected(result);
}

/** What happens to an order's used coupons when the order is refunded in full. */
export type CouponRefundPolicy = 'return_on_full_refund' | 'keep_used';
export const DEFAULT_COUPON_REFUND_POLICY: CouponRefundPolicy = 'return_on_full_refund';

/**
 * For the refund path: after a refund, the order's used coupons go back to the buyer when
 * the order is now refunded in full and the policy says so (an expired one stays expired).
 * Partial refunds keep them used. Safe to repeat.
 */
export async function returnCouponsOnRefund(db: CouponsDb | CouponsTransaction, orderNo: string, fullyRefunded: boolean, policy: CouponRefundPolicy, now_ms: number): Promise<number> {
  if (!fullyRefunded || policy === 'keep_used') return 0;
  const result = await db
    .updateTable('coupons')
    .set({ state: 'available', order_no: null, updated_at_ms: now_ms })
    .where('order_no', '=', orderNo)
    .where('state', '=', 'used')
    .executeTakeFirst();
  return affected(result);
}
