import type { JobHandler } from '../jobs/index.ts';
import type { OrdersPlatform } from './platform.ts';
import { ORDER_EXPIRE_JOB, ORDER_PAY_WITHOUT_CHANNEL_JOB } from './events.ts';
import { expireCheckout, payWithoutChannel } from './lifecycle.ts';

/** The orders' jobs: 超时取消, and an order with nothing to pay taken to paid. */
export function ordersJobs(platform: OrdersPlatform): Record<string, JobHandler> {
  return {
    // A job written before checkouts names its order, whose number is its own checkout's.
    [ORDER_EXPIRE_JOB]: async (payload: { checkoutNo?: string; orderNo?: string }) => void (await expireCheckout(platform, (payload.checkoutNo ?? payload.orderNo)!)),
    [ORDER_PAY_WITHOUT_CHANNEL_JOB]: async (payload: { orderNo: string }) => void (await payWithoutChannel(platform, payload.orderNo)),
  };
}
