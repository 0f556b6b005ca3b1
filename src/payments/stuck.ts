import { waitingJobKeys } from '../jobs/index.ts';

import { applyJobKey } from './results.ts';
import type { PaymentsShardDb } from './tables.ts';

/**
 * What of the payment centre's can be left stuck by a crash, for the consistency pass: 支付成功
 * recorded but never taken to its order, with no apply job left to do it (lost, or dead).
 * `applyToOrder` repairs it.
 */

/** Where a walk over recorded successes got to: (updated_at_ms, pay_no) of the last one read. */
export interface PaymentPosition {
  updated_at_ms: number;
  payNo: string;
}

/**
 * Payments of this shard that succeeded before `succeededBefore_ms` and were never applied, in
 * (updated_at_ms, pay number) order after `after`; `stuck` when no apply job is waiting for it.
 */
export async function unappliedPayments(
  shard: PaymentsShardDb,
  query: { succeededBefore_ms: number; after?: PaymentPosition | undefined; limit: number },
): Promise<{ payNo: string; orderNo: string; updated_at_ms: number; stuck: boolean }[]> {
  let select = shard
    .selectFrom('payment_orders')
    .select(['pay_no', 'order_no', 'updated_at_ms'])
    .where('status', '=', 'SUCCEEDED')
    .where('disposition', 'is', null)
    .where('updated_at_ms', '<', query.succeededBefore_ms);
  const { after } = query;
  if (after !== undefined) {
    select = select.where((eb) => eb.or([eb('updated_at_ms', '>', after.updated_at_ms), eb.and([eb('updated_at_ms', '=', after.updated_at_ms), eb('pay_no', '>', after.payNo)])]));
  }
  const rows = await select.orderBy('updated_at_ms').orderBy('pay_no').limit(query.limit).execute();
  const waiting = await waitingJobKeys(shard, rows.map((r) => applyJobKey(r.pay_no)));
  return rows.map((r) => ({ payNo: r.pay_no, orderNo: r.order_no, updated_at_ms: r.updated_at_ms, stuck: !waiting.has(applyJobKey(r.pay_no)) }));
}
