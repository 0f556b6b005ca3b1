import { randomInt, randomUUID } from 'node:crypto';
import { assert } from './errors.ts';
import { SLOT_COUNT, SLOT_DIGITS } from './shards.ts';

/** Order numbers count milliseconds from here; 12 digits last until the year 2055. */
const ORDER_EPOCH_MS = Date.UTC(2024, 0, 1);
const MAX_SEQUENCE_PER_MS = 999;
const NODE_ID_LIMIT = 10_000;

/**
 * Order numbers: 23 digits = 12 of milliseconds since 2024 + 3 of a per-process sequence +
 * 4 of node id + 4 of the buyer's slot (shard gene). Time-ordered, made without a central
 * counter; two processes collide only if they share a node id (random unless
 * TUANGOU_NODE_ID is set), and the primary key would refuse even that.
 */
export function orderNumberGenerator(nodeId: number = randomInt(NODE_ID_LIMIT)) {
  assert(Number.isSafeInteger(nodeId) && nodeId >= 0 && nodeId < NODE_ID_LIMIT, () => `node id must be 0..${NODE_ID_LIMIT - 1}`);
  let lastMs = 0;
  let sequence = 0;
  return function nextOrderNo(slot: number, now_ms: number): string {
    assert(Number.isInteger(slot) && slot >= 0 && slot < SLOT_COUNT, () => `slot out of range: ${slot}`);
    let ms = Math.max(now_ms - ORDER_EPOCH_MS, lastMs);
    if (ms === lastMs) {
      sequence += 1;
      // A millisecond's numbers are used up: borrow the next one; the clock catches up.
      if (sequence > MAX_SEQUENCE_PER_MS) {
        ms += 1;
        sequence = 0;
      }
    } else {
      sequence = 0;
    }
    lastMs = ms;
    return (
      String(ms).padStart(12, '0') +
      String(sequence).padStart(3, '0') +
      String(nodeId).padStart(4, '0') +
      String(slot).padStart(SLOT_DIGITS, '0')
    );
  };
}

/**
 * The smallest order number made at or after `at_ms`: order numbers sort by time, so a range of
 * them is a time window read through the primary key (the reconciler scans recent orders so).
 */
export function orderNoFloor(at_ms: number): string {
  return String(Math.max(0, at_ms - ORDER_EPOCH_MS)).padStart(12, '0') + '0'.repeat(11);
}

export function newEventId(): string {
  return randomUUID();
}
