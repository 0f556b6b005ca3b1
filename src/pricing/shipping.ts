import type { PricingBuyer, PricingLine, ShippingRule } from './types.ts';

/**
 * One merchant's shipping: the rule for the buyer's handover (pickup or delivery) and region (a rule naming the
 * region wins over the merchant's default), free above its threshold. Self-pickup goes
 * through the same rules; with no pickup rule it costs nothing. `undefined` means the
 * merchant does not deliver there.
 */
export function shippingFee(
  rules: readonly ShippingRule[],
  merchantId: number,
  lines: readonly PricingLine[],
  buyer: PricingBuyer,
  goodsPayable_fen: number,
): number | undefined {
  const candidates = rules.filter((r) => r.merchantId === merchantId && r.handover === buyer.handover);
  const rule = candidates.find((r) => r.regions?.includes(buyer.region)) ?? candidates.find((r) => r.regions === undefined);
  if (!rule) return buyer.handover === 'pickup' ? 0 : undefined;
  if (rule.freeAbove_fen !== undefined && goodsPayable_fen >= rule.freeAbove_fen) return 0;
  const charge = rule.charge;
  switch (charge.kind) {
    case 'flat':
      return charge.fee_fen;
    case 'by_weight': {
      const weight_g = lines.reduce((w, l) => w + l.weight_g * l.quantity, 0);
      return stepped(weight_g, charge.first_g, charge.first_fen, charge.additional_g, charge.additional_fen);
    }
    case 'by_pieces': {
      const pieces = lines.reduce((n, l) => n + l.quantity, 0);
      return stepped(pieces, charge.first_pieces, charge.first_fen, charge.additional_pieces, charge.additional_fen);
    }
  }
}

/** First unit block at one price, each further block (or part of one) at another. */
function stepped(amount: number, first: number, first_fen: number, step: number, step_fen: number): number {
  if (amount <= 0) return 0;
  if (amount <= first || step <= 0) return first_fen;
  return first_fen + Math.ceil((amount - first) / step) * step_fen;
}
