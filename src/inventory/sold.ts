import { sql } from 'kysely';

import { transaction } from '../platform/db/retry.ts';
import { affected, ignoreDuplicates } from '../platform/db/sql.ts';
import { AppError, assert } from '../platform/errors.ts';
import { inLockOrder, moveReservation, type StockItem } from './stock-items.ts';
import type { InventoryDb } from './tables.ts';

/**
 * 支付减库存: on-payment SKUs are taken straight from available to sold when the order is paid,
 * all or nothing, recorded as confirmed reservation rows of the order so a repeat takes
 * nothing twice. Fails with `insufficient_stock` (details.activitySkuId) and changes nothing.
 */
export async function deductOnPayment(db: InventoryDb, orderNo: string, items: readonly StockItem[], now_ms: number): Promise<void> {
  await transaction(db, async (trx) => {
    const earlier = new Set(
      (await trx.selectFrom('stock_reservations').select('activity_sku_id').where('order_no', '=', orderNo).execute()).map((r) => r.activity_sku_id),
    );
    for (const item of inLockOrder(items)) {
      if (earlier.has(item.activitySkuId)) continue;
      // A concurrent deduction for the same order waits here for the other, then finds its row.
      const claimed = await trx
        .insertInto('stock_reservations')
        .values({ order_no: orderNo, activity_sku_id: item.activitySkuId, quantity: item.quantity, state: 'confirmed', created_at_ms: now_ms, updated_at_ms: now_ms })
        .$call(ignoreDuplicates(trx))
        .executeTakeFirst();
      if (affected(claimed) === 0) continue;
      const taken = await trx
        .updateTable('stock')
        .set({ available: sql`available - ${item.quantity}`, sold: sql`sold + ${item.quantity}`, updated_at_ms: now_ms })
        .where('activity_sku_id', '=', item.activitySkuId)
        .where('available', '>=', item.quantity)
        .executeTakeFirst();
      if (affected(taken) === 0) throw new AppError('insufficient_stock', { details: { activitySkuId: item.activitySkuId } });
    }
  });
}

/**
 * Gives the order's sold units (of these SKUs, or all) back to the activity (confirmed → returning → returned),
 * once. A SKU that Redis serves (秒杀) gets them in the stock row here and in Redis afterwards:
 * its row stays `returning`, which returnFlashSaleStock turns into `returned` once Redis has
 * counted the units — the caller runs it after this commits, and the flash-sale upkeep finishes
 * whatever a crash left.
 */
export async function returnSoldStock(db: InventoryDb, orderNo: string, activitySkuIds: readonly number[] | 'all', now_ms: number): Promise<number> {
  if (activitySkuIds !== 'all' && activitySkuIds.length === 0) return 0;
  return transaction(db, async (trx) => {
    let query = trx
      .selectFrom('stock_reservations')
      .select(['activity_sku_id', 'quantity'])
      .where('order_no', '=', orderNo)
      .where('state', '=', 'confirmed');
    if (activitySkuIds !== 'all') query = query.where('activity_sku_id', 'in', [...activitySkuIds]);
    const rows = await query.orderBy('activity_sku_id').execute();
    let returned = 0;
    for (const r of rows) {
      // Every return passes through returning; it ends here unless Redis serves the SKU and has yet to count the units.
      if (!(await moveReservation(trx, orderNo, r.activity_sku_id, 'confirmed', 'returning', now_ms))) continue;
      const changed = await trx
        .updateTable('stock')
        .set({ available: sql`available + ${r.quantity}`, sold: sql`sold - ${r.quantity}`, updated_at_ms: now_ms })
        .where('activity_sku_id', '=', r.activity_sku_id)
        .where('sold', '>=', r.quantity)
        .executeTakeFirst();
      assert(affected(changed) === 1, () => `returning ${orderNo}/${r.activity_sku_id} exceeds the sold stock`);
      // Read after the update, which holds the stock row's lock: the gate only turns under that
      // lock (a load's snapshot), so the load either counted these units already or will be told.
      const gate = await trx.selectFrom('stock').select('flash_sale_activity_id').where('activity_sku_id', '=', r.activity_sku_id).executeTakeFirstOrThrow();
      if (gate.flash_sale_activity_id === null) {
        assert(await moveReservation(trx, orderNo, r.activity_sku_id, 'returning', 'returned', now_ms), () => `return of ${orderNo}/${r.activity_sku_id} moved under its writer`);
      }
      returned += r.quantity;
    }
    return returned;
  });
}
