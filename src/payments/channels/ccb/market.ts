import { createHash } from 'node:crypto';

/**
 * CCB 惠市宝 (market pay) protocol facts shared by our adapter and the sandbox that plays the
 * bank: one buyer payment is a main order (Main_Ordr_No) over sub-orders, one per market
 * merchant (Orderlist[].Mkt_Mrch_Id), each with the bank's own Sub_Ordr_Id; the payment's
 * journal number Py_Trn_No refunds any sub-order by its Sub_Ordr_Id.
 *
 * Real, from third-party SDK code (shishuihao/third-party-api ccb-hsb-sdk, see
 * /work/shared/research/combined-payment-facts.md §4.1): the paths gatherPlaceorder,
 * gatherEnquireOrder and refundOrder; the request fields Ittparty_Stm_Id, Py_Chnl_Cd,
 * Ittparty_Tms, Ittparty_Jrnl_No, Mkt_Id, Main_Ordr_No, Pymd_Cd, Py_Ordr_Tpcd, Ccy,
 * Ordr_Tamt, Txn_Tamt, Order_Time_Out, Pay_Dsc, Vno, Sign_Inf, Orderlist[{Mkt_Mrch_Id,
 * Cmdty_Ordr_No, Ordr_Amt, Txnamt, Cmdty_Dsc}]; the answer's Py_Trn_No, Cshdk_Url,
 * Pay_Qr_Code, Ordr_Stcd and Orderlist[{Cmdty_Ordr_No, Sub_Ordr_Id}]; refundOrder's
 * Cust_Rfnd_Trcno, Py_Trn_No, Rfnd_Amt, Sub_Ordr_List[{Sub_Ordr_Id, Rfnd_Amt}] and its answer
 * Refund_Rsp_St / Super_Refund_No; Ordr_Stcd 1/2/3/4 (an integrator's mapping (?)).
 *
 * Ours, unverified (?): how Sign_Inf is made (an MD5 MAC keyed by PUB one way, CCB's
 * MD5withRSA the other, as LongPay does), the answer envelope (Svc_Rsp_St, Svc_Rsp_Cd,
 * Rsp_Inf), the enquiry's sub-order amounts and refunds, the refund enquiry path, that the
 * payment notification is JSON and carries Orderlist, and the close (惠市宝 orders lapse at
 * Order_Time_Out; only the sandbox offers a close, as for LongPay).
 */

export const MARKET_PLACE_ORDER_PATH = '/online/direct/gatherPlaceorder';
export const MARKET_ENQUIRE_ORDER_PATH = '/online/direct/gatherEnquireOrder';
export const MARKET_REFUND_PATH = '/online/direct/refundOrder';
/** (?) The refund enquiry's path was not found; named after the others. */
export const MARKET_ENQUIRE_REFUND_PATH = '/online/direct/enquireRefundOrder';
/** Only the sandbox has it: a 惠市宝 order otherwise lapses at its Order_Time_Out. */
export const MARKET_SANDBOX_CLOSE_PATH = '/online/direct/sandboxCloseOrder';

/**
 * Most sub-orders in one main order. 惠市宝 documents no cap that we found (?); 50 is the
 * largest documented elsewhere (WeChat 平台收付通) and keeps a signed body to a few kilobytes.
 */
export const CCB_MAX_SUB_ORDERS = 50;

/** Cmdty_Ordr_No and Main_Ordr_No are at most 40 characters. */
export const MARKET_ORDER_NO = /^[0-9A-Za-z_-]{1,40}$/;
/** Mkt_Mrch_Id, the market merchant's number, is at most 30 characters. */
export const MARKET_MERCHANT_ID = /^[0-9A-Za-z]{1,30}$/;

/** Pymd_Cd: how the buyer pays. */
export const PAY_MODE = { page: '01', h5: '03', qr: '07' } as const;
/** Py_Ordr_Tpcd 04: an ordinary order (not 消费券, 在途 or 线下). */
export const ORDER_TYPE_ORDINARY = '04';
export const CCY_CNY = '156';
export const MARKET_VERSION = '4';

/** Ordr_Stcd: 1 awaiting payment, 2 paid, 3 failed, 4 lapsed (失效). */
export const ORDER_STATE = { pending: '1', paid: '2', failed: '3', lapsed: '4' } as const;
/** Refund_Rsp_St: 00 refunded, 01 failed, anything else still processing. */
export const REFUND_STATE = { succeeded: '00', failed: '01', processing: '02' } as const;

/** Svc_Rsp_St of an answer: 00 done, 01 refused (with Svc_Rsp_Cd naming why). Ours (?). */
export const SERVICE_OK = '00';
export const SERVICE_REFUSED = '01';
export const MARKET_CODES = {
  badSignature: 'HSB0001',
  badField: 'HSB0002',
  notFound: 'HSB0003',
  orderExists: 'HSB0004',
  notRefundable: 'HSB0005',
  refundExceeds: 'HSB0006',
  alreadyPaid: 'HSB0007',
  expired: 'HSB0008',
} as const;

/** Stand-in for the notification URL a real market sets with the bank; sent only to the sandbox. */
export const MARKET_SANDBOX_NOTIFY_FIELD = 'Sandbox_Notify_Url';

export type MarketValue = string | ReadonlyArray<Readonly<Record<string, string>>>;
export type MarketMessage = Readonly<Record<string, MarketValue>>;

/**
 * The signed text: top-level fields but Sign_Inf, empty ones left out, sorted by name,
 * `name=value` joined by `&`, a list written as its JSON. (?) — see the file comment.
 */
export function marketSignedText(message: MarketMessage): string {
  return Object.keys(message)
    .filter((name) => name !== 'Sign_Inf')
    .sort()
    .map((name) => [name, message[name]!] as const)
    .filter(([, value]) => (typeof value === 'string' ? value !== '' : value.length > 0))
    .map(([name, value]) => `${name}=${typeof value === 'string' ? value : JSON.stringify(value)}`)
    .join('&');
}

/** The merchant's MAC on a request: lowercase MD5 of the signed text with PUB appended, as LongPay's. */
export function marketRequestMac(message: MarketMessage, pub: string): string {
  return createHash('md5').update(`${marketSignedText(message)}&PUB=${pub}`, 'utf8').digest('hex');
}
