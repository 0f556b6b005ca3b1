import { sql, type Transaction } from 'kysely';
import { recordEvent } from '../events/index.ts';

import { affected } from '../platform/db/sql.ts';
import { AppError, assert } from '../platform/errors.ts';
import { ORDER_REFUNDED, type OrderRefunded } from './events.ts';
import { closedPayable_fen, findOrder, lockCheckout, transitionOrder, type Order } from './store.ts';
import type { OrdersTransaction } from './tables.ts';

/**
 * The lines a refund may cover, each with its payable. The payment centre takes off the 价保 it
 * paid out on a line: its payouts, not the claims, so a claim whose payout never happened (the
 * line was refunded first) costs the buyer nothing.
 */
export function refundableLines(order: Order, lineNos: readonly number[]): { lineNo: number; activitySkuId: number; quantity: number; payable_fen: number }[] {
  return lineNos.map((lineNo) => {
    const line = order.lines.find((l) => l.lineNo === lineNo);
    if (!line) throw new AppError('invalid_field', { field: 'lineNos', message: `The order has no line ${lineNo}.` });
    if (line.refunded_at_ms !== null) throw new AppError('refund_not_allowed', { message: `Line ${lineNo} was refunded already.` });
    return { lineNo, activitySkuId: line.activitySkuId, quantity: line.quantity, payable_fen: line.payable_fen };
  });
}

/**
 * Records a succeeded refund on the order, inside the payment centre's transaction on the
 * order's shard: the amount, the lines it covered (each refunded once, whole), REFUNDED when
 * no line is left, and order.refunded for the modules that give back stock, coupons and
 * points. A refund of an amount only (价保) adds to the amount and touches no line.
 */
export async function recordOrderRefund(
  trx: OrdersTransaction,
  orderNo: string,
  refund: { refundNo: string; reason: string; lineNos: readonly number[] | null; amount_fen: number },
  now_ms: number,
): Promise<void> {
  const known = await findOrder(trx, orderNo);
  assert(known, () => `refund recorded on order ${orderNo} that does not exist`);
  // Refunds of one checkout's orders take turns on it, so each event's checkout figures include the ones before.
  const checkout = await lockCheckout(trx, known.checkoutNo);
  const order = checkout?.orders.find((o) => o.orderNo === orderNo);
  assert(checkout && order && (order.status === 'PAID' || order.status === 'REFUNDED'), () => `refund recorded on order ${orderNo} that is not paid`);
  const raised = await trx
    .updateTable('orders')
    .set({ refunded_fen: sql`refunded_fen + ${refund.amount_fen}`, updated_at_ms: now_ms })
    .where('order_no', '=', orderNo)
    .where(sql<boolean>`refunded_fen + ${refund.amount_fen} <= paid_fen`)
    .executeTakeFirst();
  assert(affected(raised) === 1, () => `refunds of order ${orderNo} would exceed what was paid`);
  if (refund.lineNos === null) return;

  for (const lineNo of refund.lineNos) {
    const marked = await trx
      .updateTable('order_lines')
      .set({ refunded_at_ms: now_ms })
      .where('order_no', '=', orderNo)
      .where('line_no', '=', lineNo)
      .where('refunded_at_ms', 'is', null)
      .executeTakeFirst();
    assert(affected(marked) === 1, () => `line ${orderNo}/${lineNo} refunded twice`);
  }
  const refundedLines = new Set([...order.lines.filter((l) => l.refunded_at_ms !== null).map((l) => l.lineNo), ...refund.lineNos]);
  const fully = refundedLines.size === order.lines.length;
  if (fully && order.status === 'PAID') await transitionOrder(trx, order, 'REFUNDED', {}, now_ms);
  const refundedLinesPayable_fen = order.lines.filter((l) => refundedLines.has(l.lineNo)).reduce((sum, l) => sum + l.payable_fen, 0);
  const after = {
    orders: checkout.orders.map((o) =>
      o.orderNo === orderNo ? { ...o, status: fully ? ('REFUNDED' as const) : o.status, lines: o.lines.map((l) => (refundedLines.has(l.lineNo) ? { ...l, refunded_at_ms: l.refunded_at_ms ?? now_ms } : l)) } : o,
    ),
  };
  const event: OrderRefunded = {
    orderNo,
    checkoutNo: checkout.checkoutNo,
    buyerId: order.buyerId,
    refundNo: refund.refundNo,
    reason: refund.reason,
    lines: order.lines.filter((l) => refund.lineNos!.includes(l.lineNo)).map((l) => ({ lineNo: l.lineNo, activitySkuId: l.activitySkuId, quantity: l.quantity })),
    amount_fen: refund.amount_fen,
    refundedLinesPayable_fen,
    payable_fen: order.payable_fen,
    fullyRefunded: fully,
    checkoutClosed_fen: closedPayable_fen(after),
    checkoutPayable_fen: checkout.payable_fen,
    checkoutFullyRefunded: after.orders.every((o) => o.status === 'CANCELLED' || o.status === 'REFUNDED'),
  };
  await recordEvent(trx, { type: ORDER_REFUNDED, aggregateId: orderNo, payload: event }, now_ms);
}
