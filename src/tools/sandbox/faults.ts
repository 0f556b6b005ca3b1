import type { ChannelName } from '../../payments/channels/types.ts';

/** Fault switches. Counters are used up one notification (or refund) at a time. */
export interface Faults {
  /** The next N notifications are never sent (lost): only an active query finds them. */
  drop: number;
  /** Every notification waits this long before its first attempt. */
  delay_ms: number;
  /** The next N notifications are each delivered twice at the same moment. */
  duplicate: number;
  /** While on, notifications are held; turning it off sends the held ones newest first. */
  reorder: boolean;
  /** The next N delivery attempts carry a spoiled signature; the retry after each is signed properly. */
  misSign: number;
  /** The next N refunds fail at the channel. */
  failRefund: number;
  /**
   * The next N closes are answered 'closed' but leave the trade payable: the buyer was already
   * at the cashier, or the channel's close had not taken effect — how a re-issued payment
   * leaves the old one payable (重复支付).
   */
  keepPayableOnClose: number;
  /** Channels that are down: every call to their API is answered 503, unsigned (an outage). */
  down: ChannelName[];
}

export const NO_FAULTS: Faults = { drop: 0, delay_ms: 0, duplicate: 0, reorder: false, misSign: 0, failRefund: 0, keepPayableOnClose: 0, down: [] };
