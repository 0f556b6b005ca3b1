import { assert } from './errors.ts';
import type { Kysely } from 'kysely';

/**
 * 分库分表 by buyer. A buyer's orders live on one of SLOT_COUNT logical slots (the buyer's
 * shard gene, 基因法); a slot → physical database map allows resharding by moving slots.
 * The order number ends in the slot, so the buyer id or the order number alone routes.
 */
export const SLOT_COUNT = 1024;
export const SLOT_DIGITS = 4;

export function slotOfBuyer(buyerId: number): number {
  assert(Number.isSafeInteger(buyerId) && buyerId > 0, () => `buyer id must be a positive integer, got ${buyerId}`);
  return buyerId % SLOT_COUNT;
}

/** The slot carried in an order number's last digits; undefined for a malformed number. */
export function slotOfOrderNo(orderNo: string): number | undefined {
  if (!/^\d{23}$/.test(orderNo)) return undefined;
  const slot = Number(orderNo.slice(-SLOT_DIGITS));
  return slot < SLOT_COUNT ? slot : undefined;
}

export interface OrderShards<Tables> {
  readonly databases: readonly Kysely<Tables>[];
  forSlot(slot: number): Kysely<Tables>;
  forBuyer(buyerId: number): Kysely<Tables>;
  /** undefined when the number cannot be one of ours. */
  forOrderNo(orderNo: string): Kysely<Tables> | undefined;
}

/** Slots are spread over the databases in contiguous ranges: slot × N / SLOT_COUNT. */
export function orderShards<Tables>(databases: readonly Kysely<Tables>[]): OrderShards<Tables> {
  assert(databases.length > 0 && databases.length <= SLOT_COUNT, 'between 1 and SLOT_COUNT order shards');
  const forSlot = (slot: number): Kysely<Tables> => databases[Math.floor((slot * databases.length) / SLOT_COUNT)]!;
  return {
    databases,
    forSlot,
    forBuyer: (buyerId) => forSlot(slotOfBuyer(buyerId)),
    forOrderNo: (orderNo) => {
      const slot = slotOfOrderNo(orderNo);
      return slot === undefined ? undefined : forSlot(slot);
    },
  };
}
