import { fenToYuan, parseChinaTime, chinaStamp, yuanToFen } from '../../../payments/channels/ccb/protocol.ts';
import {
  CCB_MAX_SUB_ORDERS, MARKET_CODES, MARKET_ENQUIRE_ORDER_PATH, MARKET_ENQUIRE_REFUND_PATH, MARKET_MERCHANT_ID, MARKET_ORDER_NO,
  MARKET_PLACE_ORDER_PATH, MARKET_REFUND_PATH, MARKET_SANDBOX_CLOSE_PATH, MARKET_SANDBOX_NOTIFY_FIELD, ORDER_STATE, PAY_MODE,
  REFUND_STATE, SERVICE_OK, SERVICE_REFUSED, marketRequestMac, marketSignedText, type MarketMessage,
} from '../../../payments/channels/ccb/market.ts';
import type { SandboxCore } from '../core.ts';
import { cashierUrl, type SandboxServer } from '../module.ts';
import type { OutgoingNotification } from '../notifications.ts';
import { SandboxError, type SandboxCombined, type SandboxRefund, type SandboxTrade } from '../trades.ts';

/**
 * CCB 惠市宝 (market pay) as the sandbox plays it, under {sandbox}/ccb/hsb: a main order over a
 * trade per sub-order (the core's combined payment), each sub-order's Sub_Ordr_Id being its core
 * trade number, the payment's Py_Trn_No kept in every sub-order's extra. Requests carry the
 * merchant's MAC; answers and the payment notification are signed with "CCB's" key.
 */

/** The market the sandbox hosts: fixed numbers, not secrets (the MAC is keyed by the bank's public key). */
export const SANDBOX_CCB_MARKET = {
  marketId: '41060860800',
  systemId: '00000000000000000000',
  channelCode: '0000',
  ownMerchantId: '41060860800000',
} as const;

export const MARKET_BASE_PATH = '/ccb/hsb';
/** A main order without Order_Time_Out stays payable this long. */
const DEFAULT_ORDER_LIFETIME_MS = 24 * 3600_000;

type Row = Record<string, string>;
type Answer = Record<string, string | Row[]>;

export function registerMarket(server: SandboxServer, core: SandboxCore, pub: string, signText: (text: string) => string, base: () => string): void {
  const signed = (answer: Answer): string => JSON.stringify({ ...answer, Sign_Inf: signText(marketSignedText(answer)) });
  const refuse = (code: string, message: string): Answer => ({ Svc_Rsp_St: SERVICE_REFUSED, Svc_Rsp_Cd: code, Rsp_Inf: message });

  const routes: Array<[string, (message: Record<string, unknown>) => Answer]> = [
    [MARKET_PLACE_ORDER_PATH, placeOrder],
    [MARKET_ENQUIRE_ORDER_PATH, (message) => enquire(String(message.Main_Ordr_No ?? ''))],
    [MARKET_REFUND_PATH, refund],
    [MARKET_ENQUIRE_REFUND_PATH, (message) => enquireRefund(String(message.Cust_Rfnd_Trcno ?? ''))],
    [MARKET_SANDBOX_CLOSE_PATH, close],
  ];
  for (const [path, handle] of routes) {
    server.post(`${MARKET_BASE_PATH}${path}`, async (request, reply) => {
      const message = readRequest(typeof request.body === 'string' ? request.body : '');
      const answer = !message
        ? refuse(MARKET_CODES.badField, '报文格式错误')
        : message.Mkt_Id !== SANDBOX_CCB_MARKET.marketId || message.Ittparty_Stm_Id !== SANDBOX_CCB_MARKET.systemId
          ? refuse(MARKET_CODES.badField, '市场编号不存在')
          : String(message.Sign_Inf ?? '').toLowerCase() !== marketRequestMac(withoutSign(message), pub)
            ? refuse(MARKET_CODES.badSignature, '验签失败')
            : handle(message);
      return reply.type('application/json; charset=utf-8').send(signed(answer));
    });
  }

  function placeOrder(message: Record<string, unknown>): Answer {
    const combineNo = String(message.Main_Ordr_No ?? '');
    const rows = rowsOf(message.Orderlist);
    const method = Object.entries(PAY_MODE).find(([, code]) => code === message.Pymd_Cd)?.[0];
    if (!MARKET_ORDER_NO.test(combineNo) || !method || rows.length < 1 || rows.length > CCB_MAX_SUB_ORDERS) return refuse(MARKET_CODES.badField, '交易要素不合法[Main_Ordr_No/Pymd_Cd/Orderlist]');
    let subOrders: Array<{ payNo: string; amount_fen: number; subject: string; subMerchantId: string }>;
    let total_fen: number;
    try {
      subOrders = rows.map((row) => {
        if (!MARKET_ORDER_NO.test(row.Cmdty_Ordr_No ?? '') || !MARKET_MERCHANT_ID.test(row.Mkt_Mrch_Id ?? '')) throw new Error('sub-order number or merchant');
        const amount_fen = yuanToFen(row.Txnamt ?? '');
        if (amount_fen <= 0 || yuanToFen(row.Ordr_Amt ?? '') !== amount_fen) throw new Error('sub-order amount');
        return { payNo: row.Cmdty_Ordr_No!, amount_fen, subject: row.Cmdty_Dsc || row.Cmdty_Ordr_No!, subMerchantId: row.Mkt_Mrch_Id! };
      });
      total_fen = yuanToFen(String(message.Txn_Tamt ?? ''));
    } catch {
      return refuse(MARKET_CODES.badField, '交易要素不合法[Orderlist]');
    }
    if (total_fen !== subOrders.reduce((sum, sub) => sum + sub.amount_fen, 0)) return refuse(MARKET_CODES.badField, '子订单金额之和与订单金额不符');
    const expires_at_ms = message.Order_Time_Out ? parseChinaTime(String(message.Order_Time_Out)) : core.now() + DEFAULT_ORDER_LIFETIME_MS;
    if (expires_at_ms === undefined) return refuse(MARKET_CODES.badField, '交易要素不合法[Order_Time_Out]');
    if (expires_at_ms <= core.now()) return refuse(MARKET_CODES.expired, '订单已超时');
    let made: { combined: SandboxCombined; trades: SandboxTrade[] };
    try {
      made = core.createCombined({
        channel: 'ccb',
        combineNo,
        subOrders,
        method,
        notifyUrl: String(message[MARKET_SANDBOX_NOTIFY_FIELD] ?? ''),
        expires_at_ms,
        extra: { Py_Trn_No: core.newChannelNo('HSB'), Pymd_Cd: String(message.Pymd_Cd) },
      });
    } catch (error) {
      if (error instanceof SandboxError) return refuse(MARKET_CODES.orderExists, `订单号重复 (${error.message})`);
      throw error;
    }
    // The bank's own number of each sub-order is the core trade's; refunds name it.
    for (const trade of made.trades) trade.extra.Sub_Ordr_Id = trade.tradeNo;
    const url = cashierUrl(base(), 'ccb', combineNo);
    return {
      Svc_Rsp_St: SERVICE_OK,
      Main_Ordr_No: combineNo,
      Py_Trn_No: made.combined.extra.Py_Trn_No!,
      Prim_Ordr_No: made.combined.extra.Py_Trn_No!,
      Ordr_Gen_Tm: chinaStamp(made.combined.created_at_ms),
      Ordr_Ovtm_Tm: chinaStamp(made.combined.expires_at_ms),
      Cshdk_Url: url,
      Pay_Qr_Code: url,
      Ordr_Stcd: orderState(made.combined, made.trades),
      Orderlist: made.trades.map((trade) => ({ Cmdty_Ordr_No: trade.payNo, Sub_Ordr_Id: trade.tradeNo })),
    };
  }

  function orderState(combined: SandboxCombined, trades: SandboxTrade[]): string {
    if (trades.length > 0 && trades.every((trade) => trade.paid_at_ms !== undefined)) return ORDER_STATE.paid;
    if (trades.some((trade) => trade.state === 'CLOSED') || core.now() > combined.expires_at_ms) return ORDER_STATE.lapsed;
    return ORDER_STATE.pending;
  }

  function enquire(combineNo: string): Answer {
    const combined = core.combined('ccb', combineNo);
    if (!combined) return refuse(MARKET_CODES.notFound, '订单不存在');
    const trades = core.tradesOf(combined);
    const state = orderState(combined, trades);
    const total_fen = trades.reduce((sum, trade) => sum + trade.amount_fen, 0);
    const answer: Answer = {
      Svc_Rsp_St: SERVICE_OK,
      Main_Ordr_No: combineNo,
      Py_Trn_No: combined.extra.Py_Trn_No ?? '',
      Ordr_Stcd: state,
      Ordr_Tamt: fenToYuan(total_fen),
      Txn_Tamt: fenToYuan(total_fen),
      Orderlist: trades.map((trade) => ({
        Cmdty_Ordr_No: trade.payNo,
        Sub_Ordr_Id: trade.tradeNo,
        Mkt_Mrch_Id: trade.subMerchantId ?? '',
        Ordr_Amt: fenToYuan(trade.amount_fen),
        Txnamt: fenToYuan(trade.amount_fen),
        Rfnd_Amt: fenToYuan(core.refunded_fen(trade)),
      })),
    };
    if (state === ORDER_STATE.paid) answer.Pay_Time = chinaStamp(trades[0]!.paid_at_ms!);
    return answer;
  }

  function refundAnswer(refund: SandboxRefund): Answer {
    const state = refund.state === 'SUCCESS' ? REFUND_STATE.succeeded : refund.state === 'FAILED' ? REFUND_STATE.failed : REFUND_STATE.processing;
    const answer: Answer = { Svc_Rsp_St: SERVICE_OK, Cust_Rfnd_Trcno: refund.refundNo, Refund_Rsp_St: state, Rfnd_Amt: fenToYuan(refund.amount_fen), Super_Refund_No: refund.channelRefundNo };
    if (refund.succeeded_at_ms !== undefined) answer.Rfnd_Tm = chinaStamp(refund.succeeded_at_ms);
    if (refund.state === 'FAILED') answer.Rsp_Inf = '退款失败';
    return answer;
  }

  function refund(message: Record<string, unknown>): Answer {
    const refundNo = String(message.Cust_Rfnd_Trcno ?? '');
    const payment = String(message.Py_Trn_No ?? '');
    const list = rowsOf(message.Sub_Ordr_List);
    // The sandbox refunds one sub-order at a time, the only form our adapter sends (a real 惠市宝 takes several, or none for the whole).
    if (!MARKET_ORDER_NO.test(refundNo) || list.length !== 1) return refuse(MARKET_CODES.badField, '交易要素不合法[Cust_Rfnd_Trcno/Sub_Ordr_List]');
    let amount_fen: number;
    try {
      amount_fen = yuanToFen(String(message.Rfnd_Amt ?? ''));
      if (yuanToFen(list[0]!.Rfnd_Amt ?? '') !== amount_fen) return refuse(MARKET_CODES.badField, '退款金额与子订单退款金额之和不符');
    } catch {
      return refuse(MARKET_CODES.badField, '退款金额格式错误');
    }
    const trade = core.listTrades('ccb').find((candidate) => candidate.combineNo !== undefined && candidate.extra.Py_Trn_No === payment && candidate.extra.Sub_Ordr_Id === list[0]!.Sub_Ordr_Id);
    if (!trade) return refuse(MARKET_CODES.notFound, '原支付流水或子订单不存在');
    const earlier = core.findRefund('ccb', refundNo);
    // 对于同一笔客户方退款流水号，惠市宝确保只发生一次退款: the same number answers the same refund.
    if (earlier) return earlier.trade === trade ? refundAnswer(earlier.refund) : refuse(MARKET_CODES.orderExists, '退款流水号重复');
    try {
      return refundAnswer(core.refund('ccb', trade.payNo, { refundNo, amount_fen }));
    } catch (error) {
      if (!(error instanceof SandboxError)) throw error;
      if (error.code === 'refund_exceeds') return refuse(MARKET_CODES.refundExceeds, '退款金额超过可退金额');
      return refuse(MARKET_CODES.notRefundable, '该订单不允许退款');
    }
  }

  function enquireRefund(refundNo: string): Answer {
    const found = core.findRefund('ccb', refundNo);
    if (!found || found.trade.combineNo === undefined) return refuse(MARKET_CODES.notFound, '退款记录不存在');
    return refundAnswer(found.refund);
  }

  function close(message: Record<string, unknown>): Answer {
    const combineNo = String(message.Main_Ordr_No ?? '');
    try {
      const outcome = core.closeCombined('ccb', combineNo, rowsOf(message.Orderlist).map((row) => row.Cmdty_Ordr_No ?? ''));
      if (outcome === 'not_found') return refuse(MARKET_CODES.notFound, '订单不存在');
      if (outcome === 'already_paid') return refuse(MARKET_CODES.alreadyPaid, '订单已支付，不能关闭');
      return { Svc_Rsp_St: SERVICE_OK, Main_Ordr_No: combineNo, Ordr_Stcd: ORDER_STATE.lapsed };
    } catch (error) {
      if (error instanceof SandboxError) return refuse(MARKET_CODES.badField, error.message);
      throw error;
    }
  }
}

/** The 惠市宝 payment notification for a paid main order: every sub-order with its Sub_Ordr_Id, signed by "CCB". */
export function marketPaidNotification(
  combined: SandboxCombined,
  trades: readonly SandboxTrade[],
  signText: (text: string) => string,
  options: { misSign: boolean },
): OutgoingNotification | undefined {
  if (!combined.notifyUrl) return undefined;
  const total_fen = trades.reduce((sum, trade) => sum + trade.amount_fen, 0);
  const message: Answer = {
    Mkt_Id: SANDBOX_CCB_MARKET.marketId,
    Main_Ordr_No: combined.combineNo,
    Py_Trn_No: combined.extra.Py_Trn_No ?? '',
    Ordr_Amt: fenToYuan(total_fen),
    Txnamt: fenToYuan(total_fen),
    Pay_Time: chinaStamp(trades[0]!.paid_at_ms!),
    Ordr_Stcd: ORDER_STATE.paid,
    Orderlist: trades.map((trade) => ({ Cmdty_Ordr_No: trade.payNo, Sub_Ordr_Id: trade.tradeNo, Mkt_Mrch_Id: trade.subMerchantId ?? '', Txnamt: fenToYuan(trade.amount_fen) })),
  };
  const text = marketSignedText(message);
  // Spoiled: signed over other text, so the signature is well-formed but wrong.
  const signature = signText(options.misSign ? `${text}&spoiled=1` : text);
  return { url: combined.notifyUrl, headers: { 'content-type': 'application/json; charset=utf-8' }, body: JSON.stringify({ ...message, Sign_Inf: signature }) };
}

function readRequest(body: string): Record<string, unknown> | undefined {
  try {
    const message: unknown = JSON.parse(body);
    return typeof message === 'object' && message !== null && !Array.isArray(message) ? (message as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function withoutSign(message: Record<string, unknown>): MarketMessage {
  const copy: Record<string, string | Row[]> = {};
  for (const [name, value] of Object.entries(message)) {
    if (name === 'Sign_Inf') continue;
    copy[name] = typeof value === 'string' ? value : rowsOf(value);
  }
  return copy;
}

function rowsOf(value: unknown): Row[] {
  if (!Array.isArray(value)) return [];
  return value.filter((row): row is Row => typeof row === 'object' && row !== null && Object.values(row).every((cell) => typeof cell === 'string'));
}
