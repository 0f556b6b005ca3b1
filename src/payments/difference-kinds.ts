/**
 * 对账 differences, seen from the money: 长款 (long) — the channel holds more than our books
 * say (a payment it has that we never recorded, a refund we recorded that it never made);
 * 短款 (short) — less (a success of ours missing from its bill, a refund it made that we never
 * asked for); an amount that differs; a status that differs for an item both sides have; and
 * an item near midnight that landed on the other side's other day (carried to the next run).
 */
export const DIFFERENCE_KINDS = ['long', 'short', 'amount_mismatch', 'status_mismatch', 'cross_day'] as const;
export type DifferenceKind = (typeof DIFFERENCE_KINDS)[number];
