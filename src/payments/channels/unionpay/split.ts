/**
 * UnionPay's combined payment, as close as UnionPay comes to one: a single consume transaction
 * (one orderId, one queryId) whose 分账域 accSplitData tells UnionPay how much of it goes to which
 * second-level merchant (二级商户). Shared by our adapter and the sandbox that plays UnionPay.
 *
 * Documented (third-party code quoting 《全渠道平台接入接口规范》, not UnionPay's own pages, which
 * the search did not reach): the consume request's `accSplitData` field, JSON
 * `{"accSplitType":"1","accSplitMchts":[{"accSplitMerId":"<15-digit 二级商户代码>","accSplitAmt":"<fen>"}]}`
 * — accSplitType 1 splits by a merchant list with amounts sent online (2 by a rule id set up
 * in the merchant portal), at most 5 split objects, each 二级商户 added beforehand by the
 * 一级商户 in the 商户服务门户; `reqReserved` (请求方保留域) is echoed unchanged in answers and
 * notifications; the daily ZM file has 分账入账方式, 二级商户代码, 二级商户简称 and
 * 二级商户分账入账金额 columns. accessType 2 with subMerId/subMerName/subMerAbbr (平台类商户接入)
 * exists for one second-level merchant per transaction.
 *
 * Ours, unverified (?): the platform's own part (自营) named by our own merId in the list; one
 * sub-order per merchant; our sub-order numbers carried in reqReserved (`combined:` and the
 * numbers in list order) so the notification can name them; a sub-order refunded as a 04 refund
 * of the shared queryId whose accSplitData names the one merchant giving money back; the ZM file
 * writing a line per sub-order under the transaction's orderId with our sub-order number in
 * 商户自定义域; that payment notifications and query answers echo accSplitData.
 */

/** accSplitMchts holds at most 5 split objects ("最多支持5个分账对象"). */
export const UNIONPAY_MAX_SUB_ORDERS = 5;
/** Split by a list of merchants with amounts sent online. */
export const ACC_SPLIT_BY_LIST = '1';
/** 二级商户代码: 15 digits, as every UnionPay merchant code. */
export const SPLIT_MERCHANT_ID = /^\d{15}$/;
const COMBINED_MARK = 'combined:';

export interface SplitEntry {
  merId: string;
  amount_fen: number;
}

export function accSplitData(entries: readonly SplitEntry[]): string {
  return JSON.stringify({ accSplitType: ACC_SPLIT_BY_LIST, accSplitMchts: entries.map((entry) => ({ accSplitMerId: entry.merId, accSplitAmt: String(entry.amount_fen) })) });
}

/** The split list of an accSplitData field, or undefined when it is absent or not a by-list split. */
export function readAccSplitData(text: string | undefined): SplitEntry[] | undefined {
  if (!text) return undefined;
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    return undefined;
  }
  const fields = data as { accSplitType?: unknown; accSplitMchts?: unknown };
  if (typeof data !== 'object' || data === null || fields.accSplitType !== ACC_SPLIT_BY_LIST || !Array.isArray(fields.accSplitMchts)) return undefined;
  const entries: SplitEntry[] = [];
  for (const item of fields.accSplitMchts as unknown[]) {
    const { accSplitMerId, accSplitAmt } = (item ?? {}) as { accSplitMerId?: unknown; accSplitAmt?: unknown };
    if (typeof accSplitMerId !== 'string' || typeof accSplitAmt !== 'string' || !/^[1-9]\d{0,11}$/.test(accSplitAmt)) return undefined;
    entries.push({ merId: accSplitMerId, amount_fen: Number(accSplitAmt) });
  }
  return entries.length > 0 ? entries : undefined;
}

/** reqReserved of a combined consume: our sub-order numbers, in the split list's order. */
export function combinedReserved(payNos: readonly string[]): string {
  return `${COMBINED_MARK}${payNos.join(',')}`;
}

export function readCombinedReserved(text: string | undefined): string[] | undefined {
  if (!text?.startsWith(COMBINED_MARK)) return undefined;
  const payNos = text.slice(COMBINED_MARK.length).split(',');
  return payNos.every((payNo) => payNo !== '') ? payNos : undefined;
}
