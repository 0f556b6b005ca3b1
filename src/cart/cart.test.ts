import { describe, expect, it } from 'vitest';
import type { SellableSku } from '../catalog/index.ts';
import { openness } from '../catalog/index.ts';
import { viewCart } from './cart.ts';

const now = Date.UTC(2026, 10, 24, 12);
const HOUR = 3600_000;
const activity = (starts: number, cutoff: number, ends: number) => ({
  id: 1, title: 'A', starts_at_ms: now + starts, order_cutoff_at_ms: now + cutoff, ends_at_ms: now + ends, pickupDate: '2026-11-25', inventoryMode: 'on_order' as const, hot: false,
});
const sku = (id: number, a = activity(-HOUR, HOUR, 2 * HOUR)): SellableSku => ({
  activitySkuId: id, activityId: a.id, skuId: id, merchantId: 1, title: `sku ${id}`, category: null, price_fen: 1000, listPrice_fen: 1500, weight_g: 100, purchaseLimit: null, activityPriceUnits: null, activity: a,
});
const stock = (id: number, available: number) => ({ activitySkuId: id, total: 100, available, reserved: 100 - available, sold: 0, activityPriceTaken: 0 });

describe('openness of an activity', () => {
  const cases: [string, ReturnType<typeof activity>, string][] = [
    ['before the start', activity(HOUR, 2 * HOUR, 3 * HOUR), 'not_started'],
    ['between start and cut-off', activity(-HOUR, HOUR, 2 * HOUR), 'open'],
    ['after the cut-off, before the end', activity(-2 * HOUR, -HOUR, HOUR), 'closed'],
    ['after the end', activity(-3 * HOUR, -2 * HOUR, -HOUR), 'closed'],
    ['exactly at the cut-off', activity(-HOUR, 0, HOUR), 'closed'],
    ['exactly at the start', activity(0, HOUR, 2 * HOUR), 'open'],
  ];
  for (const [name, a, expected] of cases) it(name, () => expect(openness(a, now)).toBe(expected));
});

describe('the cart view', () => {
  it('shows every line, marking the unavailable ones instead of dropping them', () => {
    const lines = [1, 2, 3, 4, 5, 6].map((id) => ({ activitySkuId: id, quantity: 3, selected: id !== 6, hold_expires_at_ms: null, added_at_ms: now }));
    const skus = new Map([
      [1, sku(1)],
      [2, sku(2, activity(-3 * HOUR, -2 * HOUR, -HOUR))],
      [3, sku(3)],
      [4, sku(4)],
      [5, sku(5, activity(HOUR, 2 * HOUR, 3 * HOUR))],
      [6, sku(6)],
    ]);
    const levels = new Map([[1, stock(1, 50)], [2, stock(2, 50)], [3, stock(3, 0)], [4, stock(4, 2)], [5, stock(5, 50)], [6, stock(6, 50)]]);
    skus.delete(6);
    const view = viewCart(lines, skus, levels, now);
    expect(view.lines.map((l) => [l.activitySkuId, l.availability])).toEqual([
      [1, 'available'], [2, 'activity_closed'], [3, 'sold_out'], [4, 'not_enough_stock'], [5, 'not_started'], [6, 'withdrawn'],
    ]);
    expect(view.selectedTotalFen).toBe(3000);
  });
});
