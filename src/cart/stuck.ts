import type { CartDb } from './tables.ts';


/**
 * What of the cart's can be left stuck by a crash, for the consistency pass: lines of a placed
 * order still in the cart (the order.placed subscriber's work lost). `removeOrderedLines` repairs it.
 */

export interface LeftInCart {
  orderNo: string;
  buyerId: number;
  activitySkuIds: number[];
  placed_at_ms: number;
}

/**
 * Of these placed orders, the ones whose lines are still in their buyer's cart, with those lines.
 * A line the buyer added again after the order is theirs and stays — the rule removeOrderedLines applies.
 */
export async function linesLeftByOrders(
  db: CartDb,
  orders: readonly { orderNo: string; buyerId: number; placed_at_ms: number; activitySkuIds: readonly number[] }[],
): Promise<LeftInCart[]> {
  if (orders.length === 0) return [];
  const cart = await db
    .selectFrom('cart_lines')
    .select(['buyer_id', 'activity_sku_id', 'updated_at_ms'])
    .where('buyer_id', 'in', [...new Set(orders.map((o) => o.buyerId))])
    .execute();
  const found: LeftInCart[] = [];
  for (const order of orders) {
    const skus = new Set(order.activitySkuIds);
    const left = cart.filter((line) => line.buyer_id === order.buyerId && skus.has(line.activity_sku_id) && line.updated_at_ms <= order.placed_at_ms);
    if (left.length > 0) found.push({ orderNo: order.orderNo, buyerId: order.buyerId, activitySkuIds: left.map((line) => line.activity_sku_id), placed_at_ms: order.placed_at_ms });
  }
  return found;
}
