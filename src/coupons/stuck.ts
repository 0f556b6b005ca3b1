import type { CouponsDb } from './tables.ts';


/**
 * What of the coupons' can be left stuck by a crash, for the consistency pass: coupons locked by an
 * order long ago. Whether that order ended is the orders module's to say; `returnCoupons` gives
 * them back.
 */

/** Where a walk over locked coupons got to: (updated_at_ms, id) of the last one read. */
export interface CouponPosition {
  updated_at_ms: number;
  couponId: number;
}

/** Coupons locked since before `lockedBefore_ms`, in (updated_at_ms, id) order after `after`. */
export async function lockedCoupons(
  db: CouponsDb,
  query: { lockedBefore_ms: number; after?: CouponPosition | undefined; limit: number },
): Promise<{ couponId: number; orderNo: string | null; updated_at_ms: number }[]> {
  let select = db.selectFrom('coupons').select(['id', 'order_no', 'updated_at_ms']).where('state', '=', 'locked').where('updated_at_ms', '<', query.lockedBefore_ms);
  const { after } = query;
  if (after !== undefined) {
    select = select.where((eb) => eb.or([eb('updated_at_ms', '>', after.updated_at_ms), eb.and([eb('updated_at_ms', '=', after.updated_at_ms), eb('id', '>', after.couponId)])]));
  }
  const rows = await select.orderBy('updated_at_ms').orderBy('id').limit(query.limit).execute();
  return rows.map((r) => ({ couponId: r.id, orderNo: r.order_no, updated_at_ms: r.updated_at_ms }));
}
