import { randomInt } from 'node:crypto';
import { AppError } from '../../../platform/errors.ts';
import type { ChannelRefund, ChannelTrade, RefundRequest } from '../types.ts';
import {
  BILL_FILE_PATH, EBS_CODES, EBS_LANGUAGE, ORDER_STATUS, TX_BILL_FILE, TX_DOWNLOAD_FILE, TX_QUERY_PAYMENTS,
  TX_QUERY_REFUNDS, TX_REFUND, TX_SANDBOX_CLOSE, decodeGb18030, ebsXml, encodeRequestXmlForm,
  fenToYuan, parseChinaTime, parseEbsXml, yuanToFen, type EbsDocument, type XmlFields,
} from './protocol.ts';

/**
 * The merchant's side of CCB's 外联平台 (EBS): a bank-supplied client the merchant runs on
 * its own network, taking `<TX>` XML as the form field requestXml over HTTP, in GB18030. It
 * answers query (5W1002), refund query (5W1003), refund (5W1004) and bill (5W1005 names the
 * file, 6W0111 fetches it to the client, whose file share we then read over HTTP).
 */

export interface EbsSettings {
  merchantId: string;
  posId: string;
  ebsUrl: string;
  ebsUserId: string;
  ebsPassword: string;
  billUrl: string;
  timeout_ms: number;
}

/** Largest answer we read from the EBS client; a bill zip for a busy day stays well below. */
const MAX_EBS_RESPONSE_BYTES = 64 * 1024 * 1024;

export function ebsOperations(settings: EbsSettings, now: () => number) {
  async function post(url: string, body: string): Promise<Uint8Array> {
    let response: Response;
    try {
      response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body,
        signal: AbortSignal.timeout(settings.timeout_ms),
      });
    } catch (error) {
      throw unavailable('the CCB EBS client did not answer', { error: String(error) });
    }
    if (response.status !== 200) throw unavailable('the CCB EBS client answered with an HTTP error', { status: response.status });
    return readLimited(response);
  }

  async function call(txCode: string, info: XmlFields): Promise<EbsDocument> {
    const requestSn = `${now()}${String(randomInt(0, 1000)).padStart(3, '0')}`;
    const xml = ebsXml(
      [['REQUEST_SN', requestSn], ['CUST_ID', settings.merchantId], ['USER_ID', settings.ebsUserId], ['PASSWORD', settings.ebsPassword], ['TX_CODE', txCode], ['LANGUAGE', EBS_LANGUAGE]],
      info,
    );
    const bytes = await post(settings.ebsUrl, encodeRequestXmlForm(xml));
    try {
      const doc = parseEbsXml(decodeGb18030(bytes));
      if (!doc.head.RETURN_CODE) throw new Error('no RETURN_CODE');
      return doc;
    } catch (error) {
      throw unavailable('the CCB EBS client gave an unreadable answer', { error: String(error) });
    }
  }

  /** Today's (未结, KIND=0) records first, then settled ones (KIND=1) after the bank's day-end. */
  async function listByOrder(txCode: string, payNo: string): Promise<EbsDocument | undefined> {
    for (const kind of ['0', '1']) {
      const doc = await call(txCode, [
        ['START', ''], ['STARTHOUR', ''], ['STARTMIN', ''], ['END', ''], ['ENDHOUR', ''], ['ENDMIN', ''],
        ['KIND', kind], ['ORDER', payNo], ['ACCOUNT', ''], ['DEXCEL', '1'], ['MONEY', ''], ['NORDERBY', '2'],
        ['PAGE', '1'], ['POS_CODE', settings.posId], ['STATUS', '3'],
      ]);
      if (doc.head.RETURN_CODE === EBS_CODES.noRecord) continue;
      if (doc.head.RETURN_CODE !== EBS_CODES.ok) throw refused(doc);
      return doc;
    }
    return undefined;
  }

  async function query(payNo: string): Promise<ChannelTrade> {
    const doc = await listByOrder(TX_QUERY_PAYMENTS, payNo);
    const row = doc?.list.find((r) => r.ORDER === payNo);
    if (!row) return { payNo, state: 'not_found' };
    return readAnswer(doc!, () => tradeFromRow(payNo, row));
  }

  async function close(payNo: string): Promise<'closed' | 'already_paid' | 'not_found'> {
    const before = await query(payNo);
    if (before.state === 'not_found') return 'not_found';
    if (before.state === 'succeeded') return 'already_paid';
    if (before.state !== 'pending') return 'closed';
    const doc = await call(TX_SANDBOX_CLOSE, [['ORDER', payNo]]);
    if (doc.head.RETURN_CODE === EBS_CODES.ok) return 'closed';
    // Paid between our query and the close: say so rather than refuse.
    const after = await query(payNo);
    if (after.state === 'succeeded') return 'already_paid';
    if (after.state === 'closed' || after.state === 'failed') return 'closed';
    throw refused(doc);
  }

  async function refund(request: RefundRequest): Promise<ChannelRefund> {
    const doc = await call(TX_REFUND, [['MONEY', fenToYuan(request.amount_fen)], ['ORDER', request.payNo], ['REFUND_CODE', request.refundNo]]);
    const base = { payNo: request.payNo, refundNo: request.refundNo };
    if (doc.head.RETURN_CODE === EBS_CODES.refundFailed) return { ...base, state: 'failed', failure: doc.head.RETURN_MSG ?? doc.head.RETURN_CODE };
    if (doc.head.RETURN_CODE !== EBS_CODES.ok) throw refused(doc);
    return readAnswer(doc, () => ({ ...base, state: 'succeeded', amount_fen: yuanToFen(doc.info.AMOUNT ?? '') }));
  }

  async function queryRefund(payNo: string, refundNo: string): Promise<ChannelRefund> {
    const doc = await listByOrder(TX_QUERY_REFUNDS, payNo);
    const row = doc?.list.find((r) => r.REFUND_CODE === refundNo);
    if (!row) return { payNo, refundNo, state: 'not_found' };
    return readAnswer(doc!, () => {
      const status = row.ORDER_STATUS;
      const state = status === ORDER_STATUS.succeeded ? 'succeeded' : status === ORDER_STATUS.failed ? 'failed' : 'processing';
      const result: ChannelRefund = { payNo, refundNo, state, amount_fen: yuanToFen(row.REFUND_AMOUNT ?? '') };
      if (row.OriOvrlsttnEV_Trck_No) result.channelRefundNo = row.OriOvrlsttnEV_Trck_No;
      const at_ms = parseChinaTime(row.TRAN_DATE ?? '');
      if (state === 'succeeded' && at_ms !== undefined) result.succeeded_at_ms = at_ms;
      return result;
    });
  }

  async function downloadBill(date: string): Promise<Uint8Array> {
    if (!/^\d{4}-\d{2}-\d{2}$/.test(date)) throw new AppError('invalid_field', { field: 'date', message: 'The bill date must be YYYY-MM-DD.' });
    const named = await call(TX_BILL_FILE, [
      ['DATE', date.replaceAll('-', '')], ['KIND', '1'], ['FILETYPE', '1'], ['TYPE', ''], ['NORDERBY', ''],
      ['POS_CODE', ''], ['ORDER', ''], ['STATUS', ''], ['BILL_FLAG', '1'],
    ]);
    if (named.head.RETURN_CODE !== EBS_CODES.ok) throw refused(named);
    const fileName = named.info.FILE_NAME;
    if (!fileName) throw unavailable('the CCB EBS client named no bill file', { code: named.head.RETURN_CODE });
    const fetched = await call(TX_DOWNLOAD_FILE, [['SOURCE', fileName], ['FILEPATH', BILL_FILE_PATH], ['LOCAL_REMOTE', '0']]);
    if (fetched.head.RETURN_CODE !== EBS_CODES.ok) throw refused(fetched);
    let response: Response;
    try {
      response = await fetch(`${settings.billUrl}/${encodeURIComponent(fileName)}`, { signal: AbortSignal.timeout(settings.timeout_ms) });
    } catch (error) {
      throw unavailable('the CCB EBS file share did not answer', { error: String(error) });
    }
    if (response.status !== 200) throw unavailable('the CCB EBS file share has no such bill file', { status: response.status, fileName });
    return readLimited(response);
  }

  return { query, close, refund, queryRefund, downloadBill };
}

function tradeFromRow(payNo: string, row: Record<string, string>): ChannelTrade {
  const trade: ChannelTrade = { payNo, state: tradeState(row.ORDER_STATUS) };
  if (row.OriOvrlsttnEV_Trck_No) trade.channelTradeNo = row.OriOvrlsttnEV_Trck_No;
  if (row.PAYMENT_MONEY) trade.amount_fen = yuanToFen(row.PAYMENT_MONEY);
  if (trade.state === 'succeeded') {
    const at_ms = parseChinaTime(row.TRAN_DATE ?? '');
    if (at_ms !== undefined) trade.paid_at_ms = at_ms;
    trade.refunded_fen = row.REFUND_MONEY ? yuanToFen(row.REFUND_MONEY) : 0;
  }
  return trade;
}

/**
 * The bank reports an order that can no longer be paid (declined, or past its TIMEOUT) as
 * 失败: no money was taken and none will be, which is our closed.
 */
function tradeState(status: string | undefined): ChannelTrade['state'] {
  switch (status) {
    case ORDER_STATUS.succeeded:
    case ORDER_STATUS.partlyRefunded:
    case ORDER_STATUS.fullyRefunded:
      return 'succeeded';
    case ORDER_STATUS.pending:
    case ORDER_STATUS.pendingBank:
      return 'pending';
    case ORDER_STATUS.failed:
      return 'closed';
    default:
      throw unavailable('the CCB EBS client gave an unknown ORDER_STATUS', { status });
  }
}

/** Turns a malformed field in an otherwise successful answer into channel_unavailable. */
function readAnswer<T>(doc: EbsDocument, read: () => T): T {
  try {
    return read();
  } catch (error) {
    if (error instanceof AppError) throw error;
    throw unavailable('the CCB EBS client gave an unreadable answer', { code: doc.head.RETURN_CODE, error: String(error) });
  }
}

async function readLimited(response: Response): Promise<Uint8Array> {
  const declared = Number(response.headers.get('content-length') ?? '0');
  if (declared > MAX_EBS_RESPONSE_BYTES) throw unavailable('the CCB answer is too large', { bytes: declared });
  const bytes = new Uint8Array(await response.arrayBuffer());
  if (bytes.byteLength > MAX_EBS_RESPONSE_BYTES) throw unavailable('the CCB answer is too large', { bytes: bytes.byteLength });
  return bytes;
}

function refused(doc: EbsDocument): AppError {
  return new AppError('channel_refused', { details: { channel: 'ccb', code: doc.head.RETURN_CODE, message: doc.head.RETURN_MSG ?? '' } });
}

export function unavailable(message: string, details: Record<string, unknown>): AppError {
  return new AppError('channel_unavailable', { message, details: { channel: 'ccb', ...details } });
}
