import { describe, expect, it } from 'vitest';
import { priceOrder } from './index.ts';

describe('pricing (activity price × quantity)', () => {
  it('prices each line at the activity price, never the list price', () => {
    const priced = priceOrder([
      { activitySkuId: 1, merchantId: 1, quantity: 3, listPrice_fen: 1500, activityPrice_fen: 990 },
      { activitySkuId: 2, merchantId: 2, quantity: 1, listPrice_fen: 800, activityPrice_fen: 800 },
    ]);
    expect(priced.lines.map((l) => [l.unitPrice_fen, l.subtotal_fen, l.payable_fen])).toEqual([[990, 2970, 2970], [800, 800, 800]]);
    expect(priced).toMatchObject({ itemsTotal_fen: 3770, discountTotal_fen: 0, shipping_fen: 0, payable_fen: 3770, currency: 'CNY' });
  });
  it('refuses a quantity that is not a positive whole number', () => {
    for (const quantity of [0, -1, 1.5]) {
      expect(() => priceOrder([{ activitySkuId: 1, merchantId: 1, quantity, listPrice_fen: 1, activityPrice_fen: 1 }])).toThrow(/invariant/);
    }
  });
});
