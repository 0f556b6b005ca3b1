import { transaction } from '../platform/db/retry.ts';
/**
 * What a checkout holds before its order exists — reserved stock, locked coupons, frozen points —
 * and what must be given back when the order never appeared or was cancelled. Each owning module
 * answers what of its own has been held too long, and gives it back; the orders module says which
 * orders ended. An order that never appeared is handed to the checkout's own verification (it takes
 * the idempotency key from the dead attempt first, so a checkout that was only slow can no longer
 * write its order on top of released holds).
 */
import { lockedCoupons as lockedCouponsOf, returnCoupons } from '../coupons/index.ts';
import { heldReservations, releaseHeldStock } from '../inventory/index.ts';
import { verifyCheckoutReservation } from '../checkout/index.ts';
import { accountsWithFrozenPoints, endPointsFreeze, openFreezes } from '../points/index.ts';
import { checkoutFates, ORPHAN_GRACE_MS, parsePosition, position, walk, type Check, type Fate, type ReconcileContext, type RepairDone } from './check.ts';

interface HoldFinding {
  key: string;
  fate: Fate;
}

/** The checkouts among these whose holds must go back. */
async function holdFindings(ctx: ReconcileContext, checkoutNos: (string | null)[]): Promise<HoldFinding[]> {
  const fates = await checkoutFates(ctx, checkoutNos.filter((n): n is string => n !== null));
  return [...fates].map(([key, fate]) => ({ key, fate }));
}

/** The checkout never wrote its orders: every hold under its number goes back at once. */
async function undoNeverPlaced(ctx: ReconcileContext, checkoutNo: string): Promise<RepairDone | undefined> {
  const outcome = await verifyCheckoutReservation(ctx.platform, checkoutNo);
  return outcome === 'released' ? { action: 'released_checkout_holds', detail: 'checkout never placed: stock, coupons and points returned' } : undefined;
}

/** Stock reserved (or pending in a flash sale) for an order that never appeared or was cancelled. */
export const orphanReservations: Check<HoldFinding> = {
  name: 'orphan_reservations',
  find: (ctx) =>
    walk(
      ctx,
      'orphan_reservations',
      (after, limit) => {
        const from = after === undefined ? undefined : parsePosition(after);
        return heldReservations(ctx.platform.db, { heldBefore_ms: ctx.now_ms - ORPHAN_GRACE_MS, after: from && { created_at_ms: from[0], orderNo: from[1] }, limit });
      },
      (r) => position(r.created_at_ms, r.orderNo),
      (rows) => holdFindings(ctx, rows.map((r) => r.orderNo)),
    ),
  async repair(ctx, f) {
    if (f.fate === 'never_placed') return undoNeverPlaced(ctx, f.key);
    const units = await releaseHeldStock(ctx.platform.flashSale, ctx.platform.db, f.key, ctx.now_ms);
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
        const from = after === undefined ? undefined : parsePosition(after);
        return lockedCouponsOf(ctx.platform.db, { lockedBefore_ms: ctx.now_ms - ORPHAN_GRACE_MS, after: from && { updated_at_ms: from[0], couponId: Number(from[1]) }, limit });
      },
      (r) => position(r.updated_at_ms, r.couponId),
      (rows) => holdFindings(ctx, rows.map((r) => r.orderNo)),
    ),
  async repair(ctx, f) {
    if (f.fate === 'never_placed') return undoNeverPlaced(ctx, f.key);
    const returned = await returnCoupons(ctx.platform.db, f.key, ctx.now_ms);
    return returned > 0 ? { action: 'returned_coupons', detail: `${returned} coupons of a cancelled order` } : undefined;
  },
};

/**
 * Points frozen by an order that never appeared or was cancelled. The walk goes over the accounts
 * holding frozen points (few: only unpaid orders freeze), and reads their freezes that no deduct
 * or unfreeze ended.
 */
export const frozenPoints: Check<HoldFinding> = {
  name: 'frozen_points',
  find: (ctx) =>
    walk(
      ctx,
      'frozen_points',
      (after, limit) => accountsWithFrozenPoints(ctx.platform.db, { afterBuyerId: after === undefined ? undefined : Number(after), limit }),
      (buyerId) => String(buyerId),
      async (buyerIds) => holdFindings(ctx, await openFreezes(ctx.platform.db, buyerIds, ctx.now_ms - ORPHAN_GRACE_MS)),
    ),
  async repair(ctx, f) {
    if (f.fate === 'never_placed') return undoNeverPlaced(ctx, f.key);
    const points = await transaction(ctx.platform.db, (trx) => endPointsFreeze(trx, f.key, 'unfreeze', ctx.now_ms));
    return points > 0 ? { action: 'unfroze_points', detail: `${points} points of a cancelled order` } : undefined;
  },
};
