import type { JobHandler } from '../jobs/index.ts';
import type { OrdersPlatform } from '../orders/index.ts';
import { verifyCheckoutReservation } from './checkout.ts';
import { VERIFY_RESERVATION_JOB } from './steps.ts';

/** Checkout's job: the crash safety net of a checkout's holds, written with them. */
export function checkoutJobs(platform: OrdersPlatform): Record<string, JobHandler> {
  return {
    // A job written before checkouts names the attempt's order number, which is now its checkout number.
    [VERIFY_RESERVATION_JOB]: async (payload: { checkoutNo?: string; orderNo?: string }) => {
      const checkoutNo = (payload.checkoutNo ?? payload.orderNo)!;
      if ((await verifyCheckoutReservation(platform, checkoutNo)) === 'released') {
        platform.log.warn({ checkoutNo }, 'released the stock of a checkout that never wrote its orders');
      }
    },
  };
}
