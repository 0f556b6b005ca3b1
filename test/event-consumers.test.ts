import { describe, expect, it } from 'vitest';
import { eventConsumerNames } from '../src/app.ts';

/**
 * `tuangou migrate` creates one durable broker consumer per name listed here; a name that changed
 * or went missing would leave a consumer on the broker that nobody reads, and events unhandled.
 * Each module subscribes its own consumers, so this is the list that must not drift.
 */
describe('event consumers', () => {
  it('are the same names on the same event types, each name once', () => {
    const consumers = eventConsumerNames();
    expect(new Set(consumers.map((consumer) => consumer.name)).size).toBe(consumers.length);
    expect([...consumers].sort((a, b) => a.name.localeCompare(b.name))).toEqual([
      { name: 'cart.remove-ordered-lines', type: 'order.placed' },
      { name: 'coupons.return', type: 'order.cancelled' },
      { name: 'coupons.return-on-refund', type: 'order.refunded' },
      { name: 'coupons.use', type: 'order.paid' },
      { name: 'inventory.apply-flash-sale-reservations', type: 'order.placed' },
      { name: 'inventory.confirm-reservation', type: 'order.paid' },
      { name: 'inventory.release-reservation', type: 'order.cancelled' },
      { name: 'inventory.return-refunded-stock', type: 'order.refunded' },
      { name: 'payments.close-open-attempts', type: 'order.cancelled' },
      { name: 'payments.price-protection-payout', type: 'order.price_protected' },
      { name: 'points.deduct', type: 'order.paid' },
      { name: 'points.return-on-refund', type: 'order.refunded' },
      { name: 'points.unfreeze', type: 'order.cancelled' },
    ]);
  });

  it('keep their order within each event type (the in-process bus runs them in that order)', () => {
    const byType = (type: string) => eventConsumerNames().filter((consumer) => consumer.type === type).map((consumer) => consumer.name);
    expect(byType('order.paid')).toEqual(['inventory.confirm-reservation', 'coupons.use', 'points.deduct']);
    expect(byType('order.cancelled')).toEqual(['inventory.release-reservation', 'coupons.return', 'points.unfreeze', 'payments.close-open-attempts']);
    expect(byType('order.refunded')).toEqual(['inventory.return-refunded-stock', 'coupons.return-on-refund', 'points.return-on-refund']);
    expect(byType('order.placed')).toEqual(['cart.remove-ordered-lines', 'inventory.apply-flash-sale-reservations']);
  });
});
