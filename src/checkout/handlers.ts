import type { JobHandler } from '../jobs/index.ts';
import type { OrdersPlatform } from '../orders/index.ts';
import { verifyCheckoutReservation } from './checkout.ts';
import { VERIFY_RESERVATION_JOB } from './steps.ts';

/** Checkout's job: the crash safety net of a checkout's holds, written with them. */
export function checkoutJobs(platform: OrdersPlatform): Record<string, JobHandler> {
  return {
    [VERIFY_RESERVATION_JOB]: async (payload: { orderNo: string }) => {
      if ((await verifyCheckoutReservation(platform, payload.orderNo)) === 'released') {
        platform.log.warn({ orderNo: payload.orderNo }, 'released the stock of a checkout that never wrote its order');
      }
    },
  };
}
