/**
 * What a checkout holds before its order exists — reserved stock, locked coupons, frozen points —
 * and what must be given back when the order never appeared or was cancelled. The owning
 * modules' functions do the giving back; an order that never appeared is handed to the
 * checkout's own verification (it takes the idempotency key from the dead attempt first, so a
 * checkout that was only slow can no longer write its order on top of released holds).
 */
import { sql } from 'kysely';
import { returnCoupons } from '../coupons/index.ts';
import { releaseReservation } from '../inventory/index.ts';
import { releaseFlashSaleReservations } from '../inventory/flash-sale/index.ts';
import { verifyCheckoutReservation } from '../checkout/index.ts';
import { settlePoints } from '../points/index.ts';
import { orderFates, ORPHAN_GRACE_MS, parsePosition, position, walk, type Check, type Fate, type ReconcileContext, type RepairDone } from './check.ts';

interface HoldFinding {
  key: string;
  fate: Fate;
}

/** The orders among these whose holds must go back. */
async function holdFindings(ctx: ReconcileContext, orderNos: (string | null)[]): Promise<HoldFinding[]> {
  const fates = await orderFates(ctx, orderNos.filter((n): n is string => n !== null));
  return [...fates].map(([key, fate]) => ({ key, fate }));
}

/** The checkout never wrote its order: every hold under its number goes back at once. */
async function undoNeverPlaced(ctx: ReconcileContext, orderNo: string): Promise<RepairDone | undefined> {
  const outcome = await verifyCheckoutReservation(ctx.p, orderNo);
  return outcome === 'released' ? { action: 'released_checkout_holds', detail: 'order never placed: stock, coupons and points returned' } : undefined;
}

/** Stock reserved (or pending in a flash sale) for an order that never appeared or was cancelled. */
export const orphanReservations: Check<HoldFinding> = {
  name: 'orphan_reservations',
  find: (ctx) =>
    walk(
      ctx,
      'orphan_reservations',
      (after, limit) => {
        let query = ctx.p.db
          .selectFrom('stock_reservations')
          .select(['order_no', 'created_at_ms'])
          .where('state', 'in', ['reserved', 'pending'])
          .where('created_at_ms', '<', ctx.now_ms - ORPHAN_GRACE_MS)
          // Cart holds (keys H…) are not orders; they expire by their own job.
          .where('order_no', 'not like', 'H%');
        if (after !== undefined) {
          const [t, orderNo] = parsePosition(after);
          query = query.where((eb) => eb.or([eb('created_at_ms', '>', t), eb.and([eb('created_at_ms', '=', t), eb('order_no', '>', orderNo)])]));
        }
        return query.orderBy('created_at_ms').orderBy('order_no').limit(limit).execute();
      },
      (r) => position(r.created_at_ms, r.order_no),
      (rows) => holdFindings(ctx, rows.map((r) => r.order_no)),
    ),
  async repair(ctx, f) {
    if (f.fate === 'never_placed') return undoNeverPlaced(ctx, f.key);
    // As the order.cancelled subscriber does it: Redis first for a flash sale's units.
    if (ctx.p.flashSale) await releaseFlashSaleReservations(ctx.p.flashSale, ctx.p.db, f.key);
    const units = await releaseReservation(ctx.p.db, f.key, ctx.now_ms);
    return units > 0 ? { action: 'released_reservation', detail: `${units} units of a cancelled order` } : undefined;
  },
};

/** Coupons still locked by an order that never appeared or was cancelled. */
export const lockedCoupons: Check<HoldFinding> = {
  name: 'locked_coupons',
  find: (ctx) =>
    walk(
      ctx,
      'locked_coupons',
      (after, limit) => {
        let query = ctx.p.db
          .selectFrom('coupons')
          .select(['id', 'order_no', 'updated_at_ms'])
          .where('state', '=', 'locked')
          .where('updated_at_ms', '<', ctx.now_ms - ORPHAN_GRACE_MS);
        if (after !== undefined) {
          const [t, id] = parsePosition(after);
          query = query.where((eb) => eb.or([eb('updated_at_ms', '>', t), eb.and([eb('updated_at_ms', '=', t), eb('id', '>', Number(id))])]));
        }
        return query.orderBy('updated_at_ms').orderBy('id').limit(limit).execute();
      },
      (r) => position(r.updated_at_ms, r.id),
      (rows) => holdFindings(ctx, rows.map((r) => r.order_no)),
    ),
  async repair(ctx, f) {
    if (f.fate === 'never_placed') return undoNeverPlaced(ctx, f.key);
    const returned = await returnCoupons(ctx.p.db, f.key, ctx.now_ms);
    return returned > 0 ? { action: 'returned_coupons', detail: `${returned} coupons of a cancelled order` } : undefined;
  },
};

/**
 * Points frozen by an order that never appeared or was cancelled. The walk goes over the accounts
 * holding frozen points (few: only unpaid orders freeze), and reads their freezes that no deduct
 * or unfreeze settled.
 */
export const frozenPoints: Check<HoldFinding> = {
  name: 'frozen_points',
  find: (ctx) =>
    walk(
      ctx,
      'frozen_points',
      (after, limit) => {
        let query = ctx.p.db.selectFrom('points_accounts').select('buyer_id').where('frozen', '>', 0);
        if (after !== undefined) query = query.where('buyer_id', '>', Number(after));
        return query.orderBy('buyer_id').limit(limit).execute();
      },
      (r) => String(r.buyer_id),
      async (accounts) => {
        if (accounts.length === 0) return [];
        const freezes = await ctx.p.db
          .selectFrom('points_journal as f')
          .select('f.order_no')
          .where('f.buyer_id', 'in', accounts.map((a) => a.buyer_id))
          .where('f.movement', '=', 'freeze')
          .where('f.created_at_ms', '<', ctx.now_ms - ORPHAN_GRACE_MS)
          .where(({ not, exists, selectFrom }) =>
            not(
              exists(
                selectFrom('points_journal as s')
                  .select(sql`1`.as('one'))
                  .whereRef('s.buyer_id', '=', 'f.buyer_id')
                  .whereRef('s.order_no', '=', 'f.order_no')
                  .where('s.movement', 'in', ['deduct', 'unfreeze']),
              ),
            ),
          )
          .execute();
        return holdFindings(ctx, freezes.map((r) => r.order_no));
      },
    ),
  async repair(ctx, f) {
    if (f.fate === 'never_placed') return undoNeverPlaced(ctx, f.key);
    const points = await settlePoints(ctx.p.db, f.key, 'unfreeze', ctx.now_ms);
    return points > 0 ? { action: 'unfroze_points', detail: `${points} points of a cancelled order` } : undefined;
  },
};
