import { randomBytes } from 'node:crypto';
import { formatBillZip, type BillFileRow } from '../../../payments/channels/ccb/bill.ts';
import {
  BILL_FILE_PATH, EBS_CODES, EBS_LANGUAGE, ORDER_STATUS, TX_BILL_FILE, TX_DOWNLOAD_FILE, TX_QUERY_PAYMENTS,
  TX_QUERY_REFUNDS, TX_REFUND, TX_SANDBOX_CLOSE, chinaStamp, decodeRequestXmlForm, ebsXml, encodeGb18030,
  fenToYuan, parseEbsXml, yuanToFen, type EbsDocument, type XmlFields,
} from '../../../payments/channels/ccb/protocol.ts';
import { chinaDate } from '../../../payments/channels/types.ts';
import type { SandboxCore } from '../core.ts';
import { SandboxError, type SandboxTrade } from '../trades.ts';
import type { SandboxServer } from '../module.ts';

/**
 * The merchant's 外联平台 (EBS) client as the sandbox plays it: one HTTP endpoint taking the
 * form field requestXml (GB18030 `<TX>` XML) and answering XML, plus the client's file share
 * from which a bill fetched by 6W0111 is read.
 */

export interface EbsAccount {
  merchantId: string;
  posId: string;
  ebsUserId: string;
  ebsPassword: string;
}

/** Bill files the sandbox keeps for download; the oldest go first. */
const MAX_BILL_FILES = 200;

type Answer = { code: string; message: string; info?: XmlFields };

const ok = (info: XmlFields): Answer => ({ code: EBS_CODES.ok, message: '', info });
const fail = (code: string, message: string): Answer => ({ code, message });

export function registerEbs(server: SandboxServer, core: SandboxCore, account: EbsAccount): void {
  const made = new Map<string, Uint8Array>();
  const fetched = new Set<string>();

  server.post('/ccb/ebs', async (request, reply) => {
    const xml = decodeRequestXmlForm(typeof request.body === 'string' ? request.body : '');
    let doc: EbsDocument | undefined;
    try {
      doc = xml === undefined ? undefined : parseEbsXml(xml);
    } catch {
      doc = undefined;
    }
    const answer = doc ? handle(doc) : fail(EBS_CODES.badRequest, '报文格式错误');
    const body = ebsXml(
      [
        ['REQUEST_SN', doc?.head.REQUEST_SN ?? ''], ['CUST_ID', doc?.head.CUST_ID ?? ''], ['TX_CODE', doc?.head.TX_CODE ?? ''],
        ['RETURN_CODE', answer.code], ['RETURN_MSG', answer.message], ['LANGUAGE', EBS_LANGUAGE],
      ],
      answer.info ?? [],
    );
    return reply.type('text/xml; charset=GB18030').send(encodeGb18030(body));
  });

  server.get('/ccb/ebs/files/:name', async (request, reply) => {
    const { name } = request.params as { name: string };
    const bytes = made.get(name);
    // The share holds only what 6W0111 brought down to the client.
    if (!bytes || !fetched.has(name)) return reply.status(404).type('text/plain').send('no such file');
    return reply.type('application/zip').send(Buffer.from(bytes));
  });

  function handle(doc: EbsDocument): Answer {
    const { head, info } = doc;
    if (head.CUST_ID !== account.merchantId) return fail(EBS_CODES.badRequest, '商户号不存在');
    if (head.USER_ID !== account.ebsUserId || head.PASSWORD !== account.ebsPassword) return fail(EBS_CODES.wrongPassword, '密码不符，请重新输入');
    switch (head.TX_CODE) {
      case TX_QUERY_PAYMENTS:
        return queryPayments(info.ORDER ?? '');
      case TX_QUERY_REFUNDS:
        return queryRefunds(info.ORDER ?? '');
      case TX_REFUND:
        return refund(info);
      case TX_SANDBOX_CLOSE:
        return close(info.ORDER ?? '');
      case TX_BILL_FILE:
        return billFile(info.DATE ?? '');
      case TX_DOWNLOAD_FILE:
        return downloadFile(info);
      default:
        return fail(EBS_CODES.unknownTransaction, '交易码不存在');
    }
  }

  function queryPayments(payNo: string): Answer {
    const trade = core.trade('ccb', payNo);
    if (!trade) return fail(EBS_CODES.noRecord, '流水记录不存在');
    const refunded_fen = core.refunded_fen(trade);
    const row: Array<[string, string]> = [
      ['TRAN_DATE', chinaStamp(trade.paid_at_ms ?? trade.created_at_ms)],
      ['ACC_DATE', chinaDate(trade.paid_at_ms ?? trade.created_at_ms).replaceAll('-', '')],
      ['ORDER', trade.payNo], ['ACCOUNT', ''], ['PAYMENT_MONEY', fenToYuan(trade.amount_fen)],
      ['REFUND_MONEY', fenToYuan(refunded_fen)], ['POS_ID', account.posId], ['REM1', trade.extra.REMARK1 ?? ''],
      ['REM2', trade.extra.REMARK2 ?? ''], ['ORDER_STATUS', orderStatus(trade, refunded_fen)], ['PAY_MODE', 'BHK'],
      ['Orig_Amt', fenToYuan(trade.amount_fen)], ['Txn_ClrgAmt', fenToYuan(trade.amount_fen)], ['MrchCmsn_Amt', '0.00'],
      ['Discount_Amt', '0.00'], ['OriOvrlsttnEV_Trck_No', trade.tradeNo], ['MsgRp_Jrnl_No', ''],
    ];
    return ok([['CUR_PAGE', '1'], ['PAGE_COUNT', '1'], ['NOTICE', ''], ['LIST', row]]);
  }

  function orderStatus(trade: SandboxTrade, refunded_fen: number): string {
    if (trade.state === 'WAIT_BUYER_PAY') return core.now() > trade.expires_at_ms ? ORDER_STATUS.failed : ORDER_STATUS.pending;
    if (trade.paid_at_ms === undefined) return ORDER_STATUS.failed;
    if (refunded_fen === 0) return ORDER_STATUS.succeeded;
    return refunded_fen >= trade.amount_fen ? ORDER_STATUS.fullyRefunded : ORDER_STATUS.partlyRefunded;
  }

  function queryRefunds(payNo: string): Answer {
    const trade = core.trade('ccb', payNo);
    if (!trade || trade.refunds.length === 0) return fail(EBS_CODES.noRecord, '流水记录不存在');
    const lists: XmlFields = trade.refunds.map((r) => [
      'LIST',
      [
        ['TRAN_DATE', chinaStamp(r.succeeded_at_ms ?? r.created_at_ms)], ['ORDER', trade.payNo], ['REFUND_CODE', r.refundNo],
        ['PAY_AMOUNT', fenToYuan(trade.amount_fen)], ['REFUND_AMOUNT', fenToYuan(r.amount_fen)], ['POS_CODE', account.posId],
        ['ORDER_STATUS', r.state === 'SUCCESS' ? ORDER_STATUS.succeeded : r.state === 'FAILED' ? ORDER_STATUS.failed : ORDER_STATUS.pending],
        ['OriOvrlsttnEV_Trck_No', r.channelRefundNo],
      ],
    ] as const);
    return ok([['CUR_PAGE', '1'], ['PAGE_COUNT', '1'], ['NOTICE', ''], ...lists]);
  }

  function refund(info: Record<string, string>): Answer {
    let amount_fen: number;
    try {
      amount_fen = yuanToFen(info.MONEY ?? '');
    } catch {
      return fail(EBS_CODES.badRequest, '退款金额格式错误');
    }
    // Without a REFUND_CODE the bank cannot tell a repeat from a new refund.
    const refundNo = info.REFUND_CODE || `R${randomBytes(6).toString('hex')}`;
    try {
      const trade = core.trade('ccb', info.ORDER ?? '');
      const done = core.refund('ccb', info.ORDER ?? '', { refundNo, amount_fen });
      if (done.state === 'FAILED') return fail(EBS_CODES.refundFailed, '退款失败');
      return ok([['ORDER_NUM', trade!.payNo], ['PAY_AMOUNT', fenToYuan(trade!.amount_fen)], ['AMOUNT', fenToYuan(done.amount_fen)], ['REM1', ''], ['REM2', '']]);
    } catch (error) {
      if (!(error instanceof SandboxError)) throw error;
      if (error.code === 'trade_not_found') return fail(EBS_CODES.noRecord, '流水记录不存在');
      if (error.code === 'refund_exceeds') return fail(EBS_CODES.refundExceeds, '退款金额超过可退金额');
      return fail(EBS_CODES.notRefundable, '该订单不允许退款');
    }
  }

  function close(payNo: string): Answer {
    const outcome = core.close('ccb', payNo);
    if (outcome === 'not_found') return fail(EBS_CODES.noRecord, '流水记录不存在');
    if (outcome === 'already_paid') return fail(EBS_CODES.notClosable, '订单已支付，不能关闭');
    return ok([['ORDER', payNo]]);
  }

  function billFile(day: string): Answer {
    const match = /^(\d{4})(\d{2})(\d{2})$/.exec(day);
    if (!match) return fail(EBS_CODES.badRequest, '日期格式错误');
    const date = `${match[1]}-${match[2]}-${match[3]}`;
    // The real bank has a day's bill from T+1; the sandbox lets a test read today's as well.
    if (date > chinaDate(core.now())) return fail(EBS_CODES.noRecord, '对账单尚未生成');
    const rows: BillFileRow[] = core.billRows('ccb', date).map((r) => {
      const row: BillFileRow = { kind: r.kind, payNo: r.payNo, bankSerial: r.kind === 'refund' ? (r.channelRefundNo ?? r.tradeNo) : r.tradeNo, amount_fen: r.amount_fen, total_fen: r.total_fen, at_ms: r.at_ms };
      if (r.refundNo !== undefined) row.refundNo = r.refundNo;
      return row;
    });
    const file = formatBillZip({ merchantId: account.merchantId, posId: account.posId, date, made_at_ms: core.now(), random: randomBytes(2).toString('hex'), rows });
    if (made.size >= MAX_BILL_FILES) {
      const oldest = made.keys().next().value!;
      made.delete(oldest);
      fetched.delete(oldest);
    }
    made.set(file.name, file.bytes);
    return ok([['FILE_NAME', file.name], ['NOTICE', '']]);
  }

  function downloadFile(info: Record<string, string>): Answer {
    const name = info.SOURCE ?? '';
    if (!made.has(name)) return fail(EBS_CODES.noRecord, '文件不存在');
    if ((info.FILEPATH ?? '') !== BILL_FILE_PATH) return fail(EBS_CODES.badRequest, '文件路径错误');
    fetched.add(name);
    return ok([['FILE_NAME', name]]);
  }
}
