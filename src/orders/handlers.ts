import type { JobHandler } from '../jobs/index.ts';
import type { OrdersPlatform } from './platform.ts';
import { verifyCheckoutReservation, VERIFY_RESERVATION_JOB } from './checkout.ts';
import { ORDER_EXPIRE_JOB, ORDER_PAY_WITHOUT_CHANNEL_JOB } from './events.ts';
import { expireOrder, payWithoutChannel } from './lifecycle.ts';

/** The orders' jobs: 超时取消, an order with nothing to pay taken to paid, and the crash safety net of a checkout's holds. */
export function ordersJobs(platform: OrdersPlatform): Record<string, JobHandler> {
  return {
    [ORDER_EXPIRE_JOB]: async (payload: { orderNo: string }) => void (await expireOrder(platform, payload.orderNo)),
    [ORDER_PAY_WITHOUT_CHANNEL_JOB]: async (payload: { orderNo: string }) => void (await payWithoutChannel(platform, payload.orderNo)),
    [VERIFY_RESERVATION_JOB]: async (payload: { orderNo: string }) => {
      if ((await verifyCheckoutReservation(platform, payload.orderNo)) === 'released') {
        platform.log.warn({ orderNo: payload.orderNo }, 'released the stock of a checkout that never wrote its order');
      }
    },
  };
}
