import { z } from 'zod';

import { insertReturningId } from '../platform/db/sql.ts';
import { AppError } from '../platform/errors.ts';
import { MAX_RULE_AMOUNT_FEN, MAX_SHIPPING_FEE_FEN, merchantOfScope, type Promotion, type ShippingRule } from '../pricing/index.ts';
import type { PromotionsDb } from './tables.ts';

/** Most promotions live at one moment that pricing reads; past it a warning says some are missed. */
export const MAX_LIVE_PROMOTIONS = 1000;
/**
 * Promotions and shipping rules change rarely and are read by every checkout, so each process
 * keeps them this long. A write in this process drops its copy at once; other processes see
 * the change within this time.
 */
export const PRICING_RULES_CACHE_MS = 1000;

interface RulesCache {
  /** Promotions live at some moment of [from_ms, from_ms + PRICING_RULES_CACHE_MS). */
  promotions?: { loaded_ms: number; from_ms: number; list: Promotion[] };
  shipping: Map<number, { loaded_ms: number; rules: ShippingRule[] }>;
}
const caches = new WeakMap<PromotionsDb, RulesCache>();
const cacheOf = (db: PromotionsDb): RulesCache => {
  let cache = caches.get(db);
  if (!cache) caches.set(db, (cache = { shipping: new Map() }));
  return cache;
};
const fresh = (loaded_ms: number | undefined) => loaded_ms !== undefined && Date.now() - loaded_ms < PRICING_RULES_CACHE_MS;
export const MAX_SHIPPING_RULES_PER_MERCHANT = 50;

const id = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);
/** A promotion's amounts, up to MAX_RULE_AMOUNT_FEN; a shipping rule's fees, up to MAX_SHIPPING_FEE_FEN. */
const fen = z.number().int().min(0).max(MAX_RULE_AMOUNT_FEN, `at most MAX_RULE_AMOUNT_FEN (${MAX_RULE_AMOUNT_FEN} fen)`);
const shippingFen = z.number().int().min(0).max(MAX_SHIPPING_FEE_FEN, `at most MAX_SHIPPING_FEE_FEN (${MAX_SHIPPING_FEE_FEN} fen)`);
/** Grams or pieces a shipping rule's steps count in. */
export const MAX_SHIPPING_STEP_UNITS = 100_000_000;
const stepUnits = z.number().int().max(MAX_SHIPPING_STEP_UNITS, `at most MAX_SHIPPING_STEP_UNITS (${MAX_SHIPPING_STEP_UNITS})`);
const bp = z.number().int().min(0).max(10_000);

export const scopeSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('platform') }).strict(),
  z.object({ kind: z.literal('merchant'), merchantId: id }).strict(),
  z.object({ kind: z.literal('category'), category: z.string().min(1).max(100), merchantId: id.optional() }).strict(),
  z.object({ kind: z.literal('sku'), skuIds: z.array(id).min(1).max(200) }).strict(),
]);

export const promotionRuleSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('amount_off'), threshold_fen: fen.min(1), off_fen: fen.min(1), repeat: z.boolean().optional(), cap_fen: fen.optional() }).strict(),
  z.object({ kind: z.literal('percent_off'), threshold_fen: fen, discount_bp: bp.min(1) }).strict(),
  z.object({ kind: z.literal('tiered'), tiers: z.array(z.object({ threshold_fen: fen.min(1), off_fen: fen.min(1) }).strict()).min(1).max(10) }).strict(),
  z.object({ kind: z.literal('nth_unit'), n: z.number().int().min(2).max(10), discount_bp: bp.min(1) }).strict(),
]);

export const promotionInput = z
  .object({
    name: z.string().trim().min(1).max(200),
    scope: scopeSchema,
    rule: promotionRuleSchema,
    priority: z.number().int().min(0).max(1000).default(0),
    stacking: z.enum(['exclusive', 'stackable']).default('stackable'),
    startsAt: z.iso.datetime(),
    endsAt: z.iso.datetime(),
    enabled: z.boolean().default(true),
  })
  .strict();
export type PromotionInput = z.infer<typeof promotionInput>;

export const shippingRuleInput = z
  .object({
    merchantId: id,
    handover: z.enum(['pickup', 'delivery']),
    regions: z.array(z.string().min(1).max(50)).min(1).max(100).optional(),
    charge: z.discriminatedUnion('kind', [
      z.object({ kind: z.literal('flat'), fee_fen: shippingFen }).strict(),
      z.object({ kind: z.literal('by_weight'), first_g: stepUnits.min(0), first_fen: shippingFen, additional_g: stepUnits.min(1), additional_fen: shippingFen }).strict(),
      z.object({ kind: z.literal('by_pieces'), first_pieces: stepUnits.min(0), first_fen: shippingFen, additional_pieces: stepUnits.min(1), additional_fen: shippingFen }).strict(),
    ]),
    freeAboveFen: fen.optional(),
  })
  .strict();
export type ShippingRuleInput = z.infer<typeof shippingRuleInput>;

function window(input: { startsAt: string; endsAt: string }) {
  const starts_at_ms = Date.parse(input.startsAt);
  const ends_at_ms = Date.parse(input.endsAt);
  if (ends_at_ms <= starts_at_ms) throw new AppError('invalid_field', { field: 'endsAt', message: 'endsAt must be after startsAt.' });
  return { starts_at_ms, ends_at_ms };
}

/** The stored columns of a promotion. */
function promotionColumns(input: PromotionInput, now_ms: number) {
  const { starts_at_ms, ends_at_ms } = window(input);
  return {
    name: input.name,
    merchant_id: merchantOfScope(input.scope),
    scope: JSON.stringify(input.scope),
    rule: JSON.stringify(input.rule),
    priority: input.priority,
    stacking: input.stacking,
    starts_at_ms,
    ends_at_ms,
    enabled: input.enabled ? 1 : 0,
    updated_at_ms: now_ms,
  };
}

export async function createPromotion(db: PromotionsDb, input: PromotionInput, now_ms: number): Promise<Promotion & { enabled: boolean }> {
  const columns = promotionColumns(input, now_ms);
  const promotionId = await insertReturningId(db, db.insertInto('promotions').values({ ...columns, created_at_ms: now_ms }));
  delete cacheOf(db).promotions;
  return toPromotion({ id: promotionId, ...columns });
}

export async function updatePromotion(db: PromotionsDb, promotionId: number, input: PromotionInput, now_ms: number): Promise<void> {
  const result = await db.updateTable('promotions').set(promotionColumns(input, now_ms)).where('id', '=', promotionId).executeTakeFirst();
  delete cacheOf(db).promotions;
  if (Number(result.numUpdatedRows) === 0) throw new AppError('not_found', { message: `No promotion ${promotionId}.` });
}

type PromotionRowRead = { id: number; name: string; scope: string; rule: string; priority: number; stacking: string; starts_at_ms: number; ends_at_ms: number; enabled: number };
function toPromotion(r: PromotionRowRead): Promotion & { enabled: boolean } {
  return {
    id: String(r.id),
    name: r.name,
    scope: JSON.parse(r.scope),
    rule: JSON.parse(r.rule),
    priority: r.priority,
    stacking: r.stacking as Promotion['stacking'],
    starts_at_ms: r.starts_at_ms,
    ends_at_ms: r.ends_at_ms,
    enabled: r.enabled === 1,
  };
}

export async function listPromotions(db: PromotionsDb, limit: number): Promise<(Promotion & { enabled: boolean })[]> {
  const rows = await db.selectFrom('promotions').selectAll().orderBy('id', 'desc').limit(limit).execute();
  return rows.map(toPromotion);
}

/** Promotions live at `now_ms` that could touch these merchants (their own and platform-wide). */
export async function livePromotions(db: PromotionsDb, merchantIds: readonly number[], now_ms: number): Promise<Promotion[]> {
  const cache = cacheOf(db);
  const cached = cache.promotions;
  if (!cached || !fresh(cached.loaded_ms) || now_ms < cached.from_ms || now_ms >= cached.from_ms + PRICING_RULES_CACHE_MS) {
    const loaded_ms = Date.now();
    const rows = await db
      .selectFrom('promotions')
      .selectAll()
      .where('enabled', '=', 1)
      .where('starts_at_ms', '<', now_ms + PRICING_RULES_CACHE_MS)
      .where('ends_at_ms', '>', now_ms)
      .orderBy('id')
      .limit(MAX_LIVE_PROMOTIONS)
      .execute();
    if (rows.length === MAX_LIVE_PROMOTIONS) process.emitWarning(`more than ${MAX_LIVE_PROMOTIONS} promotions are live; pricing reads only the first`);
    cache.promotions = { loaded_ms, from_ms: now_ms, list: rows.map(toPromotion) };
  }
  const merchants = new Set(merchantIds);
  return cache.promotions!.list.filter((promotion) => {
    if (promotion.starts_at_ms > now_ms || now_ms >= promotion.ends_at_ms) return false;
    const owner = merchantOfScope(promotion.scope);
    return owner === null || merchants.has(owner);
  });
}

export async function createShippingRule(db: PromotionsDb, input: ShippingRuleInput, now_ms: number): Promise<ShippingRule & { id: number }> {
  const ruleId = await insertReturningId(
    db,
    db.insertInto('shipping_rules').values({
      merchant_id: input.merchantId,
      handover: input.handover,
      regions: input.regions ? JSON.stringify(input.regions) : null,
      charge: JSON.stringify(input.charge),
      free_above_fen: input.freeAboveFen ?? null,
      created_at_ms: now_ms,
    }),
  );
  cacheOf(db).shipping.delete(input.merchantId);
  return { id: ruleId, merchantId: input.merchantId, handover: input.handover, ...(input.regions && { regions: input.regions }), charge: input.charge, ...(input.freeAboveFen !== undefined && { freeAbove_fen: input.freeAboveFen }) };
}

export async function shippingRulesOf(db: PromotionsDb, merchantIds: readonly number[]): Promise<ShippingRule[]> {
  const cache = cacheOf(db).shipping;
  const stale = merchantIds.filter((m) => !fresh(cache.get(m)?.loaded_ms));
  if (stale.length > 0) {
    const loaded_ms = Date.now();
    const rows = await db
      .selectFrom('shipping_rules')
      .selectAll()
      .where('merchant_id', 'in', stale)
      .orderBy('id')
      .limit(MAX_SHIPPING_RULES_PER_MERCHANT * stale.length)
      .execute();
    for (const merchantId of stale) cache.set(merchantId, { loaded_ms, rules: [] });
    for (const r of rows) {
      cache.get(r.merchant_id)!.rules.push({
        merchantId: r.merchant_id,
        handover: r.handover as ShippingRule['handover'],
        ...(r.regions !== null && { regions: JSON.parse(r.regions) as string[] }),
        charge: JSON.parse(r.charge),
        ...(r.free_above_fen !== null && { freeAbove_fen: r.free_above_fen }),
      });
    }
  }
  return merchantIds.flatMap((m) => cache.get(m)?.rules ?? []);
}
