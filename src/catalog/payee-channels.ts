/**
 * The payment channels a merchant can hold a sub-merchant id at. The same names as the payments
 * module's CHANNELS (test/merchant-accounts.flow.test.ts holds them equal): they are written out
 * here because payments imports the catalog, and the catalog must not import payments back.
 */
export const PAYEE_CHANNELS = ['alipay', 'wechat', 'unionpay', 'ccb'] as const;
export type PayeeChannel = (typeof PAYEE_CHANNELS)[number];

/**
 * Longest sub-merchant id: WeChat's sub_mchid is string[1,32], CCB 惠市宝's Mkt_Mrch_Id at most
 * 30, Alipay's smid 16 (2088 and twelve digits). The column is varchar(32).
 */
export const MAX_SUB_MERCHANT_ID_LENGTH = 32;

/** What a sub-merchant id may hold: printable ASCII without spaces, as every channel's ids are. */
export const SUB_MERCHANT_ID_PATTERN = /^[\x21-\x7e]+$/;

export function isPayeeChannel(value: string): value is PayeeChannel {
  return (PAYEE_CHANNELS as readonly string[]).includes(value);
}
