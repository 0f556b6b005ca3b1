import { isAppError } from '../platform/errors.ts';
import type { PaymentCentre } from './centre.ts';
import type { ChannelAnswer, ChannelName, ChannelTrade, InboundRequest } from './channels/types.ts';
import { applyRefundResult } from './refunds.ts';
import { applyTradeResult, type TradeResultOutcome } from './results.ts';

/** Of a forged notification's rejection reason, this much is logged. */
const MAX_LOGGED_REASON = 200;

export type NotificationOutcome = 'handled' | 'rejected' | 'unknown_payment' | 'failed';

/**
 * One channel notification: verified by the channel's adapter before anything in it is read
 * (a forged or mis-signed one is logged and changes nothing), then applied like any other
 * news of the trade. The channel gets the answer that stops its retries once we have handled
 * it — and the one that keeps them coming when we could not (the next try may succeed).
 */
export async function handleNotification(
  centre: PaymentCentre,
  channelName: ChannelName,
  request: InboundRequest,
): Promise<{ answer: ChannelAnswer; outcome: NotificationOutcome }> {
  const channel = centre.channels.get(channelName)!;
  let notice;
  try {
    notice = await channel.parseNotification(request);
  } catch (error) {
    // One short line for a forgery (no stack: anyone can send them, as many as they like); an
    // unexpected failure while verifying keeps its stack.
    if (isAppError(error, 'notification_rejected')) {
      centre.platform.log.warn({ channel: channelName, reason: error.message.slice(0, MAX_LOGGED_REASON), bytes: request.rawBody.length }, 'notification rejected: verification failed');
      return { answer: channel.answer('forged'), outcome: 'rejected' };
    }
    centre.platform.log.warn({ channel: channelName, err: error, bytes: request.rawBody.length }, 'notification rejected: verification failed');
    return { answer: channel.answer('rejected'), outcome: 'rejected' };
  }
  try {
    // A combined payment's notice carries every sub-order: each is a trade of its own, applied in turn (idempotent, so a repeat changes nothing).
    const applied =
      notice.kind === 'trade'
        ? [await applyTradeResult(centre, notice.trade)]
        : notice.kind === 'combined'
          ? await applyEach(centre, notice.trades)
          : [await applyRefundResult(centre, notice.refund)];
    if (applied.some((outcome) => outcome === 'unknown_payment' || outcome === 'unknown')) {
      // Verified, so the channel sent it, but for no payment of ours: say so and stop the retries.
      const payNo = notice.kind === 'trade' ? notice.trade.payNo : notice.kind === 'combined' ? notice.combineNo : notice.refund.payNo;
      centre.platform.log.error({ channel: channelName, payNo, kind: notice.kind }, 'verified notification for a payment or refund we do not have');
      return { answer: channel.answer('accepted'), outcome: 'unknown_payment' };
    }
    return { answer: channel.answer('accepted'), outcome: 'handled' };
  } catch (error) {
    centre.platform.log.error({ channel: channelName, err: error }, 'notification not handled; the channel will send it again');
    return { answer: channel.answer('rejected'), outcome: 'failed' };
  }
}

async function applyEach(centre: PaymentCentre, trades: readonly ChannelTrade[]): Promise<TradeResultOutcome[]> {
  const outcomes: TradeResultOutcome[] = [];
  for (const trade of trades) outcomes.push(await applyTradeResult(centre, trade));
  return outcomes;
}
