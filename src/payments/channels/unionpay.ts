import { AppError } from '../../platform/errors.ts';
import type {
  ChannelAnswer,
  ChannelNotice,
  ChannelRefund,
  ChannelTrade,
  CombinedSubOrder,
  CreateCombinedRequest,
  CreateTradeRequest,
  InboundRequest,
  PayAction,
  PaymentChannel,
  PayMethod,
  RefundRequest,
  SentAt,
} from './types.ts';
import { decodeFileContent, parseZmBill } from './unionpay/bill.ts';
import {
  ACP_ENCODING,
  ACP_SIGN_METHOD_RSA,
  ACP_VERSION,
  CURRENCY_CNY,
  RESP_DEFECTIVE_SUCCESS,
  RESP_DUPLICATE,
  RESP_NOT_FOUND,
  RESP_SUCCESS,
  RESP_UNKNOWN,
  chinaStamp,
  formDecode,
  formEncode,
  parseFen,
  parseYearlessStampAfter,
  responseDecode,
  signFields,
  verifyFromUnionpay,
  type AcpFields,
  type TrustAnchors,
} from './unionpay/protocol.ts';
import type { UnionpaySettings } from './unionpay/settings.ts';
import { SPLIT_MERCHANT_ID, UNIONPAY_MAX_SUB_ORDERS, accSplitData, combinedReserved, readAccSplitData, readCombinedReserved } from './unionpay/split.ts';

export { unionpaySettingsFromEnv, type UnionpaySettings } from './unionpay/settings.ts';

/**
 * UnionPay online gateway (全渠道, ACP 5.1.0): page and mobile-web payment through the
 * browser form (frontTransReq), QR codes through 申码 (backTransReq), query, refund and the
 * daily file. See docs/channels/unionpay.md for what is approximated.
 */

const METHODS: readonly PayMethod[] = ['qr', 'h5', 'page'];
const CHANNEL_TYPE = { page: '07', h5: '08', qr: '08' } as const;
/** 000201: the gateway payment product; 000000 is used by QR 申码, queries and file transfer. */
const BIZ_TYPE_GATEWAY = '000201';
const BIZ_TYPE_GENERAL = '000000';
/**
 * UnionPay finds a transaction by orderId AND the txnTime it was sent with. The payment centre
 * sends its recorded time of the attempt (requested_at_ms) as txnTime and gives it back with
 * every later question; this memory only serves callers that do not (the contract tests).
 */
const MAX_REMEMBERED_TXN_TIMES = 100_000;
/**
 * UnionPay takes 8–40 letters and digits as orderId; the daily file has room for 32, so our
 * pay and refund numbers must fit that to be reconciled.
 */
const ORDER_ID = /^[0-9A-Za-z]{8,32}$/;
/** riskRateInfo.commodityName is limited, and its braces and separators must not appear inside. */
const MAX_COMMODITY_NAME_CHARS = 64;
/** reqReserved (请求方保留域) holds up to 1024 characters (?). */
const MAX_REQ_RESERVED_CHARS = 1024;

export function unionpayChannel(settings: UnionpaySettings, now: () => number): PaymentChannel {
  const trust: TrustAnchors = { rootCertPem: settings.rootCertPem, middleCertPem: settings.middleCertPem, validateCnName: settings.validateCnName };
  const api = (name: string) => `${settings.gatewayUrl}/gateway/api/${name}.do`;
  const txnTimes = new Map<string, string>();

  function txnTimeFor(key: string, fresh: boolean, at_ms?: number): string | undefined {
    const known = txnTimes.get(key);
    if (known || !fresh) return known;
    if (txnTimes.size >= MAX_REMEMBERED_TXN_TIMES) txnTimes.delete(txnTimes.keys().next().value!);
    const stamp = chinaStamp(at_ms ?? now());
    txnTimes.set(key, stamp);
    return stamp;
  }

  function mustKnowTxnTime(key: string, sent: SentAt | undefined): string {
    const known = txnTimeFor(key, false) ?? (sent && chinaStamp(sent.requested_at_ms));
    if (!known) throw new AppError('channel_unavailable', { message: 'UnionPay needs the original txnTime, which this process does not know.', details: { reason: 'txn_time_unknown', key } });
    return known;
  }

  function sign(fields: AcpFields): AcpFields {
    const base = { version: ACP_VERSION, encoding: ACP_ENCODING, signMethod: ACP_SIGN_METHOD_RSA, merId: settings.merId, accessType: settings.accessType };
    return signFields({ ...base, ...fields }, settings.signPrivateKeyPem, settings.signCertId);
  }

  /** One signed request; the answer is returned only once its signature and certificate check out. */
  async function call(url: string, fields: AcpFields): Promise<AcpFields> {
    let text: string;
    try {
      const response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded;charset=UTF-8' },
        body: formEncode(sign(fields)),
        signal: AbortSignal.timeout(settings.timeout_ms),
      });
      text = await response.text();
      if (response.status !== 200) throw new Error(`HTTP ${response.status}`);
    } catch (error) {
      throw new AppError('channel_unavailable', { details: { channel: 'unionpay', error: String(error) } });
    }
    const reply = responseDecode(text);
    const why = reply ? verifyFromUnionpay(reply, trust, now()) : 'unparseable answer';
    if (!reply || why) throw new AppError('channel_unavailable', { details: { channel: 'unionpay', reason: why } });
    return reply;
  }

  function refused(reply: AcpFields): AppError {
    return new AppError('channel_refused', { details: { channel: 'unionpay', respCode: reply.respCode, respMsg: reply.respMsg } });
  }

  function malformed(reason: string): AppError {
    return new AppError('channel_unavailable', { details: { channel: 'unionpay', reason } });
  }

  async function queryTrans(orderId: string, txnTime: string): Promise<AcpFields> {
    const reply = await call(api('queryTrans'), { txnType: '00', txnSubType: '00', bizType: BIZ_TYPE_GENERAL, orderId, txnTime });
    if (reply.respCode === RESP_SUCCESS && reply.orderId !== undefined && reply.orderId !== orderId) throw malformed('the answer is about another orderId');
    if (reply.respCode === RESP_SUCCESS || reply.respCode === RESP_NOT_FOUND) return reply;
    // 03/04/05/06 on the query itself: the question did not get through, ask again later.
    if ((RESP_UNKNOWN as readonly string[]).includes(reply.respCode ?? '') || reply.respCode === '06') throw malformed(`query answered ${reply.respCode}`);
    throw refused(reply);
  }

  async function query(payNo: string, sent?: SentAt): Promise<ChannelTrade> {
    if (sent?.combineNo !== undefined) {
      const [trade] = await queryCombined(sent.combineNo, [{ payNo, subMerchantId: sent.subMerchantId }], sent);
      return trade!;
    }
    const reply = await queryTrans(payNo, mustKnowTxnTime(`trade:${payNo}`, sent));
    if (reply.respCode === RESP_NOT_FOUND) return { payNo, state: 'not_found' };
    return tradeFrom(payNo, reply.origRespCode, reply);
  }

  async function create(request: CreateTradeRequest): Promise<PayAction> {
    if (!METHODS.includes(request.method)) throw new AppError('pay_method_not_supported', { details: { channel: 'unionpay', method: request.method } });
    if (!Number.isSafeInteger(request.amount_fen) || request.amount_fen <= 0) throw new AppError('invalid_field', { field: 'amount_fen' });
    if (!ORDER_ID.test(request.payNo)) throw new AppError('invalid_field', { field: 'payNo', message: 'UnionPay needs 8–32 letters and digits as the pay number.' });
    const fields = consumeFields(request, request.payNo, request.amount_fen, request.subject, `trade:${request.payNo}`);
    if (request.subMerchantId !== undefined) {
      // One merchant's order alone: a split whose one entry takes it all, so the money is the merchant's (二清).
      if (!SPLIT_MERCHANT_ID.test(request.subMerchantId)) throw new AppError('invalid_field', { field: 'subMerchantId', message: 'A UnionPay merchant code is 15 digits.' });
      fields.accSplitData = accSplitData([{ merId: request.subMerchantId, amount_fen: request.amount_fen }]);
    }
    return sendConsume(request, fields);
  }

  function consumeFields(request: Omit<CreateTradeRequest, 'payNo' | 'amount_fen' | 'subject'>, orderId: string, amount_fen: number, subject: string, timeKey: string): AcpFields {
    return {
      txnType: '01',
      orderId,
      txnTime: txnTimeFor(timeKey, true, request.requested_at_ms)!,
      txnAmt: String(amount_fen),
      currencyCode: CURRENCY_CNY,
      backUrl: request.notifyUrl,
      payTimeout: chinaStamp(request.expires_at_ms),
      channelType: CHANNEL_TYPE[request.method as keyof typeof CHANNEL_TYPE],
      riskRateInfo: `{commodityName=${subject.replace(/[{}&=\[\]]/g, ' ').slice(0, MAX_COMMODITY_NAME_CHARS)}}`,
    };
  }

  async function sendConsume(request: Omit<CreateTradeRequest, 'payNo' | 'amount_fen' | 'subject'>, fields: AcpFields): Promise<PayAction> {
    if (request.method === 'qr') {
      const reply = await call(api('backTransReq'), { ...fields, txnSubType: '07', bizType: BIZ_TYPE_GENERAL });
      if (reply.respCode !== RESP_SUCCESS) throw refused(reply);
      if (!reply.qrCode) throw malformed('qrCode missing');
      return { kind: 'qr_code', codeUrl: reply.qrCode };
    }
    const signed = sign({ ...fields, txnSubType: '01', bizType: BIZ_TYPE_GATEWAY, frontUrl: request.returnUrl ?? '' });
    return { kind: 'form', html: autoSubmitForm(api('frontTransReq'), signed) };
  }

  /** The merchant a sub-order's money goes to: its 二级商户, or ourselves for the platform's own goods (?). */
  function splitMerchantOf(sub: { subMerchantId?: string | undefined }): string {
    return sub.subMerchantId ?? settings.merId;
  }

  /** 合单 at UnionPay: one consume under the combined number, split by accSplitData (see unionpay/split.ts). */
  async function createCombined(request: CreateCombinedRequest): Promise<PayAction> {
    if (!METHODS.includes(request.method)) throw new AppError('pay_method_not_supported', { details: { channel: 'unionpay', method: request.method } });
    if (!ORDER_ID.test(request.combineNo)) throw new AppError('invalid_field', { field: 'combineNo', message: 'UnionPay needs 8–32 letters and digits as the combined number.' });
    const { subOrders } = request;
    if (subOrders.length < 1 || subOrders.length > UNIONPAY_MAX_SUB_ORDERS) {
      throw new AppError('invalid_field', { field: 'subOrders', message: `UnionPay splits one payment over 1 to UNIONPAY_MAX_SUB_ORDERS (${UNIONPAY_MAX_SUB_ORDERS}) merchants.` });
    }
    const merchants = subOrders.map(splitMerchantOf);
    // The split names merchants, not sub-orders: two sub-orders of one merchant could not be told apart.
    if (new Set(merchants).size !== merchants.length) throw new AppError('invalid_field', { field: 'subOrders.subMerchantId', message: 'UnionPay takes one sub-order per merchant.' });
    if (merchants.some((merId) => !SPLIT_MERCHANT_ID.test(merId))) throw new AppError('invalid_field', { field: 'subOrders.subMerchantId', message: 'A UnionPay merchant code is 15 digits.' });
    if (new Set(subOrders.map((sub) => sub.payNo)).size !== subOrders.length || subOrders.some((sub) => !ORDER_ID.test(sub.payNo))) {
      throw new AppError('invalid_field', { field: 'subOrders.payNo', message: 'Each sub-order needs its own 8–32 letters and digits.' });
    }
    if (subOrders.some((sub) => !Number.isSafeInteger(sub.amount_fen) || sub.amount_fen <= 0)) throw new AppError('invalid_field', { field: 'subOrders.amount_fen' });
    const reserved = combinedReserved(subOrders.map((sub) => sub.payNo));
    if (reserved.length > MAX_REQ_RESERVED_CHARS) throw new AppError('invalid_field', { field: 'subOrders.payNo', message: 'The sub-order numbers do not fit in reqReserved.' });
    const total_fen = subOrders.reduce((sum, sub) => sum + sub.amount_fen, 0);
    const fields = {
      ...consumeFields(request, request.combineNo, total_fen, subOrders[0]!.subject, `combined:${request.combineNo}`),
      accSplitData: accSplitData(subOrders.map((sub, index) => ({ merId: merchants[index]!, amount_fen: sub.amount_fen }))),
      reqReserved: reserved,
    };
    return sendConsume(request, fields);
  }

  /** Each sub-order's trade from an answer or notice about the combined consume, matched by merchant. */
  function subOrderTrades(code: string | undefined, fields: AcpFields, subOrders: readonly { payNo: string; subMerchantId?: string | undefined }[]): ChannelTrade[] {
    const whole = tradeFrom(fields.orderId ?? '', code, fields);
    const split = readAccSplitData(fields.accSplitData);
    if (whole.state === 'succeeded' && !split) throw malformed('a combined payment without accSplitData');
    return subOrders.map((sub) => {
      const trade: ChannelTrade = { ...whole, payNo: sub.payNo };
      if (whole.state !== 'succeeded') return trade;
      const entry = split!.find((candidate) => candidate.merId === splitMerchantOf(sub));
      if (!entry) return { payNo: sub.payNo, state: 'not_found' };
      return { ...trade, amount_fen: entry.amount_fen };
    });
  }

  /** Sub-orders are told apart by merchant: the split names merchants, not our numbers. */
  async function queryCombined(combineNo: string, subOrders: readonly Pick<CombinedSubOrder, 'payNo' | 'subMerchantId'>[], sent?: SentAt): Promise<ChannelTrade[]> {
    const reply = await queryTrans(combineNo, mustKnowTxnTime(`combined:${combineNo}`, sent));
    if (reply.respCode === RESP_NOT_FOUND) return subOrders.map((sub) => ({ payNo: sub.payNo, state: 'not_found' }));
    return subOrderTrades(reply.origRespCode, reply, subOrders);
  }

  async function closeCombined(combineNo: string, subOrders: readonly Pick<CombinedSubOrder, 'payNo' | 'subMerchantId'>[], sent?: SentAt): Promise<'closed' | 'already_paid' | 'not_found'> {
    // No close at UnionPay, as for a single trade (see close): the combined consume lapses at its payTimeout.
    const trades = await queryCombined(combineNo, subOrders, sent);
    if (trades.some((trade) => trade.state === 'succeeded')) return 'already_paid';
    if (trades.every((trade) => trade.state === 'not_found')) return 'not_found';
    return 'closed';
  }

  async function close(payNo: string, sent?: SentAt): Promise<'closed' | 'already_paid' | 'not_found'> {
    // UnionPay has no close. The trade stops being payable at its payTimeout (the order's
    // expiry, sent with it); until then we abandon it, and a late payment arrives as a
    // notification for a closed payment, which the payment centre refunds as a duplicate.
    const trade = await query(payNo, sent);
    if (trade.state === 'succeeded') return 'already_paid';
    if (trade.state === 'not_found') return 'not_found';
    return 'closed';
  }

  async function refund(request: RefundRequest): Promise<ChannelRefund> {
    if (!Number.isSafeInteger(request.amount_fen) || request.amount_fen <= 0) throw new AppError('invalid_field', { field: 'amount_fen' });
    if (!ORDER_ID.test(request.refundNo)) throw new AppError('invalid_field', { field: 'refundNo', message: 'UnionPay needs 8–32 letters and digits as the refund number.' });
    let origQryId = request.channelTradeNo;
    const sent = request.requested_at_ms === undefined ? undefined : { requested_at_ms: request.requested_at_ms };
    if (!origQryId) {
      const trade = await query(request.payNo, request.combineNo === undefined ? undefined : { requested_at_ms: request.requested_at_ms ?? now(), combineNo: request.combineNo, subMerchantId: request.subMerchantId });
      if (trade.state !== 'succeeded' || !trade.channelTradeNo) throw new AppError('channel_refused', { details: { channel: 'unionpay', reason: `the trade is ${trade.state}` } });
      origQryId = trade.channelTradeNo;
    }
    const reply = await call(api('backTransReq'), {
      txnType: '04',
      txnSubType: '00',
      bizType: BIZ_TYPE_GATEWAY,
      channelType: CHANNEL_TYPE.page,
      orderId: request.refundNo,
      origQryId,
      txnTime: txnTimeFor(`refund:${request.refundNo}`, true, request.requested_at_ms)!,
      txnAmt: String(request.amount_fen),
      currencyCode: CURRENCY_CNY,
      backUrl: request.notifyUrl,
      // Echoed in the refund's notification, which otherwise names only the refund's own orderId.
      reqReserved: request.payNo,
      // A sub-order's refund: the shared consume gives back only what its merchant's split got (?).
      ...(request.combineNo !== undefined || request.subMerchantId !== undefined ? { accSplitData: accSplitData([{ merId: splitMerchantOf(request), amount_fen: request.amount_fen }]) } : {}),
    });
    const pending: ChannelRefund = { payNo: request.payNo, refundNo: request.refundNo, state: 'processing', amount_fen: request.amount_fen };
    if ((RESP_UNKNOWN as readonly string[]).includes(reply.respCode ?? '')) return pending;
    // 00 accepted, 12 this orderId was sent before: either way the refund exists; ask what became of it.
    if (reply.respCode !== RESP_SUCCESS && reply.respCode !== RESP_DUPLICATE) throw refused(reply);
    const found = await queryRefund(request.payNo, request.refundNo, sent);
    return found.state === 'not_found' ? pending : found;
  }

  async function queryRefund(payNo: string, refundNo: string, sent?: SentAt): Promise<ChannelRefund> {
    const reply = await queryTrans(refundNo, mustKnowTxnTime(`refund:${refundNo}`, sent));
    if (reply.respCode === RESP_NOT_FOUND) return { payNo, refundNo, state: 'not_found' };
    return refundFrom(payNo, refundNo, reply.origRespCode, reply);
  }

  async function parseNotification(request: InboundRequest): Promise<ChannelNotice> {
    const fields = formDecode(request.rawBody);
    const why = !fields ? 'not a form' : verifyFromUnionpay(fields, trust, now());
    if (!fields || why) throw new AppError('notification_rejected', { details: { channel: 'unionpay', reason: why } });
    if (fields.merId !== settings.merId || !fields.orderId) throw new AppError('notification_rejected', { details: { channel: 'unionpay', reason: 'not for this merchant' } });
    const subOrderNos = fields.txnType === '01' ? readCombinedReserved(fields.reqReserved) : undefined;
    if (subOrderNos) {
      // A combined consume: the split list and our sub-order numbers come in the same order.
      const split = readAccSplitData(fields.accSplitData);
      if (!split || split.length !== subOrderNos.length) throw new AppError('notification_rejected', { details: { channel: 'unionpay', reason: 'a combined notice whose split and sub-orders differ' } });
      const subOrders = subOrderNos.map((payNo, index) => ({ payNo, subMerchantId: split[index]!.merId === settings.merId ? undefined : split[index]!.merId }));
      return { kind: 'combined', combineNo: fields.orderId, trades: subOrderTrades(fields.respCode, fields, subOrders) };
    }
    if (fields.txnType === '01') return { kind: 'trade', trade: tradeFrom(fields.orderId, fields.respCode, fields) };
    if (fields.txnType === '04' || fields.txnType === '31') {
      return { kind: 'refund', refund: refundFrom(fields.reqReserved ?? '', fields.orderId, fields.respCode, fields) };
    }
    throw new AppError('notification_rejected', { details: { channel: 'unionpay', reason: `txnType ${fields.txnType} is not handled` } });
  }

  async function downloadBill(date: string): Promise<Uint8Array> {
    if (!/^\d{4}-\d{2}-\d{2}$/.test(date)) throw new AppError('invalid_field', { field: 'date' });
    const reply = await call(settings.fileTransferUrl, {
      txnType: '76',
      txnSubType: '01',
      bizType: BIZ_TYPE_GENERAL,
      fileType: '00',
      // MMDD only: UnionPay keeps files for a limited time, so the year is the latest one.
      settleDate: date.slice(5, 7) + date.slice(8, 10),
      txnTime: chinaStamp(now()),
    });
    if (reply.respCode !== RESP_SUCCESS) throw refused(reply);
    if (!reply.fileContent) throw malformed('fileContent missing');
    try {
      return decodeFileContent(reply.fileContent);
    } catch (error) {
      throw malformed(`fileContent unreadable: ${String(error)}`);
    }
  }

  return {
    name: 'unionpay',
    methods: METHODS,
    maxSubOrders: UNIONPAY_MAX_SUB_ORDERS,
    create,
    createCombined,
    queryCombined,
    closeCombined,
    query,
    close,
    refund,
    queryRefund,
    parseNotification,
    // UnionPay stops retrying on HTTP 200 whatever the body; anything else is sent again.
    answer: (outcome): ChannelAnswer =>
      outcome === 'accepted' ? { status: 200, contentType: 'text/plain; charset=utf-8', body: 'ok' } : { status: 400, contentType: 'text/plain; charset=utf-8', body: 'rejected' },
    downloadBill,
    parseBill: (file) => parseZmBill(file),
  };
}

/** A payment's state from its result code (origRespCode in a query, respCode in a notification). */
function tradeFrom(payNo: string, code: string | undefined, fields: AcpFields): ChannelTrade {
  if (code === RESP_SUCCESS || code === RESP_DEFECTIVE_SUCCESS) {
    const amount_fen = parseFen(fields.txnAmt);
    const paid_at_ms = parseYearlessStampAfter(fields.traceTime ?? '', fields.txnTime ?? '');
    if (!fields.queryId || amount_fen === undefined || paid_at_ms === undefined) {
      throw new AppError('channel_unavailable', { details: { channel: 'unionpay', reason: 'a success without queryId, txnAmt or traceTime' } });
    }
    return { payNo, state: 'succeeded', channelTradeNo: fields.queryId, amount_fen, paid_at_ms };
  }
  if ((RESP_UNKNOWN as readonly string[]).includes(code ?? '')) return { payNo, state: 'pending' };
  return { payNo, state: 'failed' };
}

function refundFrom(payNo: string, refundNo: string, code: string | undefined, fields: AcpFields): ChannelRefund {
  const amount_fen = parseFen(fields.txnAmt);
  if (code === RESP_SUCCESS || code === RESP_DEFECTIVE_SUCCESS) {
    return {
      payNo,
      refundNo,
      state: 'succeeded',
      channelRefundNo: fields.queryId,
      amount_fen,
      succeeded_at_ms: parseYearlessStampAfter(fields.traceTime ?? '', fields.txnTime ?? ''),
    };
  }
  if ((RESP_UNKNOWN as readonly string[]).includes(code ?? '')) return { payNo, refundNo, state: 'processing', amount_fen };
  return { payNo, refundNo, state: 'failed', amount_fen, failure: [code, fields.origRespMsg ?? fields.respMsg].filter(Boolean).join(' ') };
}

/** The browser form of a front transaction, as AcpService.createAutoFormHtml builds it (values escaped). */
function autoSubmitForm(action: string, fields: AcpFields): string {
  const inputs = Object.entries(fields)
    .map(([name, value]) => `<input type="hidden" name="${escapeHtml(name)}" value="${escapeHtml(value)}"/>`)
    .join('');
  return (
    `<html><head><meta http-equiv="Content-Type" content="text/html; charset=UTF-8"/></head><body>` +
    `<form id="pay_form" action="${escapeHtml(action)}" method="post">${inputs}</form>` +
    `<script type="text/javascript">document.getElementById('pay_form').submit();</script></body></html>`
  );
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (character) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[character]!);
}
