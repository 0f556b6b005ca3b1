import type { MerchantPayee } from '../catalog/index.ts';
import type { CouponRefundPolicy } from '../coupons/index.ts';
import type { OrdersMainTables, OrdersPlatform, OrdersShardTables } from '../orders/index.ts';
import type { Platform } from '../platform/context.ts';
import type { PaymentsMainTables, PaymentsShardTables } from './tables.ts';
import type { ChannelBreakers } from './breaker.ts';
import type { ChannelName, PaymentChannel } from './channels/types.ts';

/** Payments keep their rows beside the orders they pay, and ask orders (which asks the rest) to apply them. */
export type PaymentsPlatform = Platform<OrdersMainTables & PaymentsMainTables, OrdersShardTables & PaymentsShardTables> & Pick<OrdersPlatform, 'flashSale'>;

/** What the payment flows need: the platform, the configured channels and our public address. */
export interface PaymentCentre {
  platform: PaymentsPlatform;
  channels: ReadonlyMap<ChannelName, PaymentChannel>;
  /** Which channels the cashier offers now (熔断): starting a payment on one that keeps failing is refused. */
  breakers: ChannelBreakers;
  /** Our address as the channels reach it, for their notifications (PUBLIC_URL). */
  publicUrl: string;
  couponRefundPolicy: CouponRefundPolicy;
  /** Who each merchant is at the channels (the catalog's merchants): its own goods, or its sub-merchant id per channel. */
  payees: (merchantIds: readonly number[]) => Promise<ReadonlyMap<number, MerchantPayee>>;
}


/** 补单: open payments are queried by jobs of this kind, keyed payment.query:{payNo}:{attempt}. */
export const PAYMENT_QUERY_JOB = 'payment.query';

export function notifyUrl(centre: PaymentCentre, channel: ChannelName): string {
  return `${centre.publicUrl}/payments/notify/${channel}`;
}
