import { randomInt, verify, type KeyObject } from 'node:crypto';
import { AppError } from '../../../platform/errors.ts';
import type { ChannelNotice, ChannelRefund, ChannelTrade, CombinedSubOrder, CreateCombinedRequest, PayAction, RefundRequest } from '../types.ts';
import {
  CCB_MAX_SUB_ORDERS, CCY_CNY, MARKET_ENQUIRE_ORDER_PATH, MARKET_ENQUIRE_REFUND_PATH, MARKET_MERCHANT_ID, MARKET_ORDER_NO,
  MARKET_PLACE_ORDER_PATH, MARKET_REFUND_PATH, MARKET_SANDBOX_CLOSE_PATH, MARKET_SANDBOX_NOTIFY_FIELD, MARKET_VERSION,
  MARKET_CODES, ORDER_STATE, ORDER_TYPE_ORDINARY, PAY_MODE, REFUND_STATE, SERVICE_OK, marketRequestMac, marketSignedText,
  type MarketMessage,
} from './market.ts';
import { chinaStamp, fenToYuan, parseChinaTime, yuanToFen } from './protocol.ts';

/**
 * The combined payment at CCB: 惠市宝's main order with one sub-order per market merchant
 * (see ccb/market.ts for what is documented and what is ours). Every sub-order is known to the
 * bank by its Sub_Ordr_Id, which is the sub-order's channel trade number here.
 */

export interface CcbMarketSettings {
  /** The 惠市宝 API's base URL. */
  url: string;
  /** Mkt_Id: the market (the platform) at 惠市宝. */
  marketId: string;
  /** Ittparty_Stm_Id: our system's id at the bank. */
  systemId: string;
  /** Py_Chnl_Cd: the payment channel code the bank assigned. */
  channelCode: string;
  /** Mkt_Mrch_Id of the platform's own shop, for a sub-order of the platform's own goods (自营). */
  ownMerchantId: string;
}

export interface MarketContext {
  settings: CcbMarketSettings;
  ccbKey: KeyObject;
  pub: string;
  timeout_ms: number;
  /** Send the notification URL with the order (only the sandbox reads it). */
  sendMerchantUrls: boolean;
  now: () => number;
}

/** Largest answer or notification we look at; a 50-sub-order answer is a few kilobytes. */
const MAX_MARKET_BYTES = 256 * 1024;

type Row = Record<string, string>;
type SubOrderNo = Pick<CombinedSubOrder, 'payNo'>;

export function marketOperations(context: MarketContext) {
  const { settings } = context;

  function common(): Record<string, string> {
    const now_ms = context.now();
    return {
      Ittparty_Stm_Id: settings.systemId,
      Py_Chnl_Cd: settings.channelCode,
      Ittparty_Tms: `${chinaStamp(now_ms)}${String(now_ms % 1000).padStart(3, '0')}`,
      // Unique per request; the order's own idempotency is by Main_Ordr_No.
      Ittparty_Jrnl_No: `${now_ms}${String(randomInt(0, 1_000_000)).padStart(6, '0')}`,
      Mkt_Id: settings.marketId,
      Vno: MARKET_VERSION,
    };
  }

  /** One signed request; the answer counts only once CCB's signature on it verifies. */
  async function call(path: string, fields: MarketMessage): Promise<Record<string, unknown>> {
    const message = { ...common(), ...fields };
    const body = JSON.stringify({ ...message, Sign_Inf: marketRequestMac(message, context.pub) });
    let text: string;
    try {
      const response = await fetch(`${settings.url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json; charset=utf-8' },
        body,
        signal: AbortSignal.timeout(context.timeout_ms),
      });
      text = await response.text();
      if (response.status !== 200) throw new Error(`HTTP ${response.status}`);
    } catch (error) {
      throw unavailable('the CCB 惠市宝 API did not answer', { error: String(error) });
    }
    const answer = readSigned(text, context.ccbKey);
    if (!answer) throw unavailable('the CCB 惠市宝 answer is unreadable or not signed by CCB', {});
    return answer;
  }

  function refused(answer: Record<string, unknown>): AppError {
    return new AppError('channel_refused', { details: { channel: 'ccb', code: answer.Svc_Rsp_Cd ?? '', message: answer.Rsp_Inf ?? '' } });
  }

  function orderlistOf(request: CreateCombinedRequest): Row[] {
    return request.subOrders.map((sub) => ({
      Mkt_Mrch_Id: sub.subMerchantId ?? settings.ownMerchantId,
      Cmdty_Ordr_No: sub.payNo,
      Ordr_Amt: fenToYuan(sub.amount_fen),
      Txnamt: fenToYuan(sub.amount_fen),
      Cmdty_Dsc: sub.subject.slice(0, 64),
    }));
  }

  async function createCombined(request: CreateCombinedRequest): Promise<PayAction> {
    const mode = PAY_MODE[request.method as keyof typeof PAY_MODE];
    if (!mode) throw new AppError('pay_method_not_supported', { field: 'method' });
    checkSubOrders(request.combineNo, request.subOrders);
    const orderlist = orderlistOf(request);
    for (const row of orderlist) if (!MARKET_MERCHANT_ID.test(row.Mkt_Mrch_Id!)) throw new AppError('invalid_field', { field: 'subOrders.subMerchantId', message: 'A CCB market merchant number is 1–30 letters and digits.' });
    const total_fen = request.subOrders.reduce((sum, sub) => sum + sub.amount_fen, 0);
    const fields: Record<string, string | Row[]> = {
      Main_Ordr_No: request.combineNo,
      Pymd_Cd: mode,
      Py_Ordr_Tpcd: ORDER_TYPE_ORDINARY,
      Ccy: CCY_CNY,
      Ordr_Tamt: fenToYuan(total_fen),
      Txn_Tamt: fenToYuan(total_fen),
      // The bank stops taking money at the checkout's own deadline.
      Order_Time_Out: chinaStamp(request.expires_at_ms),
      Pay_Dsc: request.subOrders[0]!.subject.slice(0, 64),
      Orderlist: orderlist,
    };
    if (context.sendMerchantUrls) fields[MARKET_SANDBOX_NOTIFY_FIELD] = request.notifyUrl;
    const answer = await call(MARKET_PLACE_ORDER_PATH, fields);
    if (answer.Svc_Rsp_St !== SERVICE_OK) throw refused(answer);
    const answered = rowsOf(answer.Orderlist);
    // The bank must have made exactly our sub-orders, each with its own id.
    const same = answered.length === orderlist.length && orderlist.every((row) => answered.some((back) => back.Cmdty_Ordr_No === row.Cmdty_Ordr_No && (back.Sub_Ordr_Id ?? '') !== ''));
    if (answer.Main_Ordr_No !== request.combineNo || !same) throw unavailable('the CCB 惠市宝 answer does not match the order', {});
    if (request.method === 'qr') {
      if (typeof answer.Pay_Qr_Code !== 'string' || answer.Pay_Qr_Code === '') throw unavailable('the CCB 惠市宝 answer has no Pay_Qr_Code', {});
      return { kind: 'qr_code', codeUrl: answer.Pay_Qr_Code };
    }
    if (typeof answer.Cshdk_Url !== 'string' || answer.Cshdk_Url === '') throw unavailable('the CCB 惠市宝 answer has no Cshdk_Url', {});
    return { kind: 'redirect', url: answer.Cshdk_Url };
  }

  /** The main order as the bank has it, or undefined when it has none under that number. */
  async function enquire(combineNo: string): Promise<Record<string, unknown> | undefined> {
    const answer = await call(MARKET_ENQUIRE_ORDER_PATH, { Main_Ordr_No: combineNo });
    if (answer.Svc_Rsp_St !== SERVICE_OK) {
      if (answer.Svc_Rsp_Cd === MARKET_CODES.notFound) return undefined;
      throw refused(answer);
    }
    if (answer.Main_Ordr_No !== combineNo) throw unavailable('the CCB 惠市宝 answer is about another order', {});
    return answer;
  }

  /** The sub-orders are named by number only: the bank's Orderlist has the rest. */
  async function queryCombined(combineNo: string, subOrders: readonly SubOrderNo[]): Promise<ChannelTrade[]> {
    const answer = await enquire(combineNo);
    if (!answer) return subOrders.map((sub) => ({ payNo: sub.payNo, state: 'not_found' }));
    const rows = rowsOf(answer.Orderlist);
    return subOrders.map((sub) => {
      const row = rows.find((candidate) => candidate.Cmdty_Ordr_No === sub.payNo);
      return row ? readAnswer(() => subOrderTrade(answer, row)) : { payNo: sub.payNo, state: 'not_found' };
    });
  }

  async function querySubOrder(payNo: string, combineNo: string): Promise<ChannelTrade> {
    const [trade] = await queryCombined(combineNo, [{ payNo }]);
    return trade!;
  }

  async function closeCombined(combineNo: string, subOrders: readonly SubOrderNo[]): Promise<'closed' | 'already_paid' | 'not_found'> {
    const before = await queryCombined(combineNo, subOrders);
    if (before.some((trade) => trade.state === 'succeeded')) return 'already_paid';
    if (before.every((trade) => trade.state === 'not_found')) return 'not_found';
    if (before.every((trade) => trade.state === 'closed' || trade.state === 'failed')) return 'closed';
    const answer = await call(MARKET_SANDBOX_CLOSE_PATH, { Main_Ordr_No: combineNo, Orderlist: subOrders.map((sub) => ({ Cmdty_Ordr_No: sub.payNo })) });
    if (answer.Svc_Rsp_St === SERVICE_OK) return 'closed';
    // Paid between our enquiry and the close: say so rather than refuse.
    if (answer.Svc_Rsp_Cd === MARKET_CODES.alreadyPaid) return 'already_paid';
    throw refused(answer);
  }

  /** A sub-order is refunded as itself: the payment's Py_Trn_No and its own Sub_Ordr_Id. */
  async function refundSubOrder(request: RefundRequest & { combineNo: string }): Promise<ChannelRefund> {
    const base = { payNo: request.payNo, refundNo: request.refundNo };
    if (!MARKET_ORDER_NO.test(request.refundNo)) throw new AppError('invalid_field', { field: 'refundNo', message: 'A CCB refund number is 1–40 letters, digits, - or _.' });
    const order = await enquire(request.combineNo);
    const row = order && rowsOf(order.Orderlist).find((candidate) => candidate.Cmdty_Ordr_No === request.payNo);
    if (!order || !row || typeof order.Py_Trn_No !== 'string') throw new AppError('channel_refused', { details: { channel: 'ccb', reason: 'no such sub-order at CCB' } });
    const amount = fenToYuan(request.amount_fen);
    const answer = await call(MARKET_REFUND_PATH, {
      Cust_Rfnd_Trcno: request.refundNo,
      Py_Trn_No: order.Py_Trn_No,
      // 部分退款: the total must equal the sub-orders' refunds, here the one sub-order's.
      Rfnd_Amt: amount,
      Sub_Ordr_List: [{ Sub_Ordr_Id: row.Sub_Ordr_Id ?? '', Rfnd_Amt: amount }],
    });
    if (answer.Svc_Rsp_St !== SERVICE_OK) throw refused(answer);
    return readAnswer(() => refundFrom(base, answer));
  }

  async function querySubOrderRefund(payNo: string, refundNo: string): Promise<ChannelRefund> {
    const answer = await call(MARKET_ENQUIRE_REFUND_PATH, { Cust_Rfnd_Trcno: refundNo });
    if (answer.Svc_Rsp_St !== SERVICE_OK) {
      if (answer.Svc_Rsp_Cd === MARKET_CODES.notFound) return { payNo, refundNo, state: 'not_found' };
      throw refused(answer);
    }
    return readAnswer(() => refundFrom({ payNo, refundNo }, answer));
  }

  return { maxSubOrders: CCB_MAX_SUB_ORDERS, createCombined, queryCombined, querySubOrder, closeCombined, refundSubOrder, querySubOrderRefund };
}

/** Whether a notification body is a 惠市宝 one (JSON) rather than LongPay's form. */
export function isMarketNotification(rawBody: string): boolean {
  return rawBody.trimStart().startsWith('{');
}

/** A 惠市宝 payment notification, verified first: every sub-order of the main order, as one combined notice. */
export function parseMarketNotification(rawBody: string, ccbKey: KeyObject, marketId: string): ChannelNotice {
  if (rawBody.length > MAX_MARKET_BYTES) throw rejected('the notification is too large');
  const message = readSigned(rawBody, ccbKey);
  if (!message) throw rejected('the notification signature does not verify');
  // Signed by the bank, but for another market: not ours to act on.
  if (message.Mkt_Id !== marketId) throw rejected('the notification is for another market');
  const combineNo = message.Main_Ordr_No;
  const rows = rowsOf(message.Orderlist);
  if (typeof combineNo !== 'string' || combineNo === '' || rows.length === 0) throw rejected('the notification lacks Main_Ordr_No or Orderlist');
  try {
    const trades = rows.map((row) => subOrderTrade(message, row));
    // A one-merchant trade is a main order of one sub-order under its own number: a trade notice.
    if (trades.length === 1 && trades[0]!.payNo === combineNo) return { kind: 'trade', trade: trades[0]! };
    return { kind: 'combined', combineNo, trades };
  } catch (error) {
    throw rejected(`the notification is unreadable: ${String(error)}`);
  }
}

function checkSubOrders(combineNo: string, subOrders: readonly CombinedSubOrder[]): void {
  if (!MARKET_ORDER_NO.test(combineNo)) throw new AppError('invalid_field', { field: 'combineNo', message: 'A CCB main order number is 1–40 letters, digits, - or _.' });
  if (subOrders.length < 1 || subOrders.length > CCB_MAX_SUB_ORDERS) {
    throw new AppError('invalid_field', { field: 'subOrders', message: `A CCB main order carries 1 to CCB_MAX_SUB_ORDERS (${CCB_MAX_SUB_ORDERS}) sub-orders.` });
  }
  const seen = new Set<string>();
  for (const sub of subOrders) {
    if (!MARKET_ORDER_NO.test(sub.payNo) || seen.has(sub.payNo)) throw new AppError('invalid_field', { field: 'subOrders.payNo', message: 'Each sub-order needs its own number of 1–40 letters, digits, - or _.' });
    if (!Number.isSafeInteger(sub.amount_fen) || sub.amount_fen <= 0) throw new AppError('invalid_field', { field: 'subOrders.amount_fen' });
    seen.add(sub.payNo);
  }
}

/** A sub-order's trade from the main order's state and its row. Ordr_Stcd is the main order's: sub-orders are paid together. */
function subOrderTrade(order: Record<string, unknown>, row: Row): ChannelTrade {
  const payNo = row.Cmdty_Ordr_No ?? '';
  const trade: ChannelTrade = { payNo, state: orderState(order.Ordr_Stcd) };
  if (row.Sub_Ordr_Id) trade.channelTradeNo = row.Sub_Ordr_Id;
  if (row.Txnamt) trade.amount_fen = yuanToFen(row.Txnamt);
  if (trade.state === 'succeeded') {
    const paid_at_ms = typeof order.Pay_Time === 'string' ? parseChinaTime(order.Pay_Time) : undefined;
    if (paid_at_ms !== undefined) trade.paid_at_ms = paid_at_ms;
    if (row.Rfnd_Amt) trade.refunded_fen = yuanToFen(row.Rfnd_Amt);
  }
  return trade;
}

function orderState(code: unknown): ChannelTrade['state'] {
  switch (code) {
    case ORDER_STATE.pending:
      return 'pending';
    case ORDER_STATE.paid:
      return 'succeeded';
    case ORDER_STATE.failed:
      return 'failed';
    case ORDER_STATE.lapsed:
      return 'closed';
    default:
      throw unavailable('the CCB 惠市宝 answer has an unknown Ordr_Stcd', { code });
  }
}

function refundFrom(base: { payNo: string; refundNo: string }, answer: Record<string, unknown>): ChannelRefund {
  const state = answer.Refund_Rsp_St === REFUND_STATE.succeeded ? 'succeeded' : answer.Refund_Rsp_St === REFUND_STATE.failed ? 'failed' : 'processing';
  const refund: ChannelRefund = { ...base, state };
  if (typeof answer.Rfnd_Amt === 'string') refund.amount_fen = yuanToFen(answer.Rfnd_Amt);
  if (typeof answer.Super_Refund_No === 'string' && answer.Super_Refund_No !== '') refund.channelRefundNo = answer.Super_Refund_No;
  if (state === 'succeeded' && typeof answer.Rfnd_Tm === 'string') {
    const at_ms = parseChinaTime(answer.Rfnd_Tm);
    if (at_ms !== undefined) refund.succeeded_at_ms = at_ms;
  }
  if (state === 'failed') refund.failure = String(answer.Rsp_Inf ?? 'refund failed');
  return refund;
}

/** A JSON message whose Sign_Inf is CCB's MD5withRSA over its signed text; undefined when it is not. */
function readSigned(text: string, ccbKey: KeyObject): Record<string, unknown> | undefined {
  let message: unknown;
  try {
    message = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof message !== 'object' || message === null || Array.isArray(message)) return undefined;
  const fields = message as Record<string, unknown>;
  const signature = fields.Sign_Inf;
  if (typeof signature !== 'string' || !/^(?:[0-9a-fA-F]{2})+$/.test(signature)) return undefined;
  for (const value of Object.values(fields)) if (typeof value !== 'string' && !isRowList(value)) return undefined;
  try {
    return verify('md5', Buffer.from(marketSignedText(fields as MarketMessage), 'utf8'), ccbKey, Buffer.from(signature, 'hex')) ? fields : undefined;
  } catch {
    return undefined;
  }
}

function isRowList(value: unknown): value is Row[] {
  return Array.isArray(value) && value.every((row) => typeof row === 'object' && row !== null && Object.values(row).every((cell) => typeof cell === 'string'));
}

function rowsOf(value: unknown): Row[] {
  return isRowList(value) ? value : [];
}

function readAnswer<T>(read: () => T): T {
  try {
    return read();
  } catch (error) {
    if (error instanceof AppError) throw error;
    throw unavailable('the CCB 惠市宝 answer is unreadable', { error: String(error) });
  }
}

function unavailable(message: string, details: Record<string, unknown>): AppError {
  return new AppError('channel_unavailable', { message, details: { channel: 'ccb', ...details } });
}

function rejected(message: string): AppError {
  return new AppError('notification_rejected', { message, details: { channel: 'ccb' } });
}
