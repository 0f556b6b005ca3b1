import { X509Certificate } from 'node:crypto';
import { chinaDate } from '../../payments/channels/types.ts';
import { billZip, encodeFileContent } from '../../payments/channels/unionpay/bill.ts';
import {
  ACP_SIGN_METHOD_RSA,
  ACP_VERSION,
  certIdOf,
  formDecode,
  formEncode,
  parseChinaStamp,
  responseEncode,
  signatureValid,
  type AcpFields,
} from '../../payments/channels/unionpay/protocol.ts';
import { UNIONPAY_DEFAULT_TIMEOUT_MS, type UnionpaySettings } from '../../payments/channels/unionpay/settings.ts';
import type { SandboxCore } from './core.ts';
import { SandboxError, type SandboxTrade } from './trades.ts';
import { cashierUrl, type SandboxChannelModule, type SandboxServer } from './module.ts';
import { issueMerchantSigner, issueMiddle, issueRoot, issueUnionpaySigner } from './unionpay/certs.ts';
import { combinedPaidFields, misSignAsUnionpay, paidFields, queryIdOf, refundFields, signAsUnionpay, zmRowOf } from './unionpay/messages.ts';
import { openCombined, splitRefundTarget, zmSplitFields } from './unionpay/split.ts';

/**
 * The sandbox playing the UnionPay online gateway at {sandbox}/unionpay/gateway/api/*.do:
 * it checks each request's signature against the merchant certificate named by certId,
 * answers in raw `k=v&…` signed by UnionPay's certificate (carried as signPubKeyCert),
 * and posts signed form notifications to backUrl until one is answered with HTTP 200.
 */

/** Both parties' key material; JSON-serializable. */
export interface UnionpaySandboxKeys {
  merId: string;
  rootCertPem: string;
  middleCertPem: string;
  unionpaySignCertPem: string;
  unionpaySignKeyPem: string;
  merchantSignCertPem: string;
  merchantSignKeyPem: string;
  merchantCertId: string;
}

export const SANDBOX_UNIONPAY_MER_ID = '777290058110048';
/** UnionPay's backUrl retries after a failed delivery (1, 2, 4, 8, 16 minutes) (?). */
export const UNIONPAY_RETRY_SCHEDULE_MS = [60_000, 120_000, 240_000, 480_000, 960_000] as const;
/** When the request names no payTimeout, the sandbox keeps the trade payable this long. */
const DEFAULT_PAY_WINDOW_MS = 24 * 3600_000;
/** Refunds whose request details (txnTime, reqReserved) the sandbox keeps for queries and notifications. */
const MAX_SANDBOX_REFUNDS = 200_000;
/** orderId: 8–40 letters and digits, no '-' or '_' (ACP 5.1.0). */
const ORDER_ID = /^[0-9A-Za-z]{8,40}$/;
const AMOUNT = /^[1-9]\d{0,11}$/;
const API = '/unionpay/gateway/api';

export const unionpaySandbox: SandboxChannelModule<UnionpaySandboxKeys, UnionpaySettings> = {
  name: 'unionpay',

  generateKeys(): UnionpaySandboxKeys {
    const now_ms = Date.now();
    const root = issueRoot(now_ms);
    const middle = issueMiddle(root, now_ms);
    const unionpay = issueUnionpaySigner(middle, now_ms);
    const merchant = issueMerchantSigner(middle, SANDBOX_UNIONPAY_MER_ID, now_ms);
    return {
      merId: SANDBOX_UNIONPAY_MER_ID,
      rootCertPem: root.certPem,
      middleCertPem: middle.certPem,
      unionpaySignCertPem: unionpay.certPem,
      unionpaySignKeyPem: unionpay.keyPem,
      merchantSignCertPem: merchant.certPem,
      merchantSignKeyPem: merchant.keyPem,
      merchantCertId: certIdOf(merchant.certPem),
    };
  },

  settingsFor(keys, sandboxUrl): UnionpaySettings {
    return {
      merId: keys.merId,
      signCertId: keys.merchantCertId,
      signPrivateKeyPem: keys.merchantSignKeyPem,
      rootCertPem: keys.rootCertPem,
      middleCertPem: keys.middleCertPem,
      validateCnName: true,
      gatewayUrl: `${sandboxUrl}/unionpay`,
      fileTransferUrl: `${sandboxUrl}${API}/fileTransfer.do`,
      accessType: '0',
      timeout_ms: UNIONPAY_DEFAULT_TIMEOUT_MS,
    };
  },

  register(server, core, keys, base) {
    registerUnionpay(server, core, keys, base);
  },
};

interface SentRefund {
  txnTime: string;
  reqReserved: string;
}

function registerUnionpay(server: SandboxServer, core: SandboxCore, keys: UnionpaySandboxKeys, base: () => string): void {
  const signer = { certPem: keys.unionpaySignCertPem, keyPem: keys.unionpaySignKeyPem };
  const merchantKey = new X509Certificate(keys.merchantSignCertPem).publicKey;
  const refunds = new Map<string, SentRefund>();

  core.registerNotifier('unionpay', {
    build(event, { misSign }) {
      let fields: AcpFields;
      let url: string;
      if (event.kind === 'paid') {
        fields = paidFields(event.trade, keys.merId);
        url = event.trade.notifyUrl;
      } else if (event.kind === 'combined_paid') {
        // One consume, one notice: the split and our sub-order numbers ride in it.
        fields = combinedPaidFields(event.combined, event.trades, keys.merId);
        url = event.combined.notifyUrl;
      } else if (event.kind === 'refunded') {
        const sent = refunds.get(event.refund.refundNo) ?? { txnTime: '', reqReserved: '' };
        fields = refundFields(event.trade, event.refund, keys.merId, sent);
        url = event.refund.notifyUrl ?? event.trade.notifyUrl;
      } else {
        // A payTimeout passing or a trade becoming final is not notified by UnionPay.
        return undefined;
      }
      const signed = misSign ? misSignAsUnionpay(fields, signer) : signAsUnionpay(fields, signer);
      return { url, headers: { 'content-type': 'application/x-www-form-urlencoded;charset=UTF-8' }, body: formEncode(signed) };
    },
    acknowledged: (answer) => answer.status === 200,
    retrySchedule_ms: UNIONPAY_RETRY_SCHEDULE_MS,
  });

  /** Why a request is refused before its content is read, or undefined when it is genuinely ours. */
  function check(fields: AcpFields | undefined): { respCode: string; respMsg: string } | undefined {
    if (!fields) return { respCode: '10', respMsg: '报文格式错误' };
    if (fields.version !== ACP_VERSION || fields.signMethod !== ACP_SIGN_METHOD_RSA) return { respCode: '10', respMsg: '报文格式错误[version/signMethod]' };
    if (fields.merId !== keys.merId) return { respCode: '31', respMsg: '商户状态不正确' };
    if (fields.certId !== keys.merchantCertId || !signatureValid(fields, merchantKey)) return { respCode: '11', respMsg: '验证签名失败' };
    return undefined;
  }

  function answer(request: AcpFields | undefined, fields: AcpFields): string {
    const echo: AcpFields = {};
    for (const name of ['accessType', 'bizType', 'merId', 'orderId', 'txnTime', 'txnType', 'txnSubType', 'reqReserved']) {
      const value = request?.[name];
      if (value) echo[name] = value;
    }
    return responseEncode(signAsUnionpay({ ...echo, ...fields }, signer));
  }

  function send(reply: { type(t: string): { send(body: string): unknown } }, request: AcpFields | undefined, fields: AcpFields): unknown {
    return reply.type('text/plain;charset=UTF-8').send(answer(request, fields));
  }

  /** Opens (or finds again) the trade a consume request describes; a changed repeat is a duplicate (12). */
  function openTrade(f: AcpFields, method: string): { payNo: string } | { respCode: string; respMsg: string } {
    const txnTime_ms = parseChinaStamp(f.txnTime ?? '');
    if (!ORDER_ID.test(f.orderId ?? '') || !AMOUNT.test(f.txnAmt ?? '') || txnTime_ms === undefined || !/^https?:\/\//.test(f.backUrl ?? '') || f.currencyCode !== '156') {
      return { respCode: '10', respMsg: '报文格式错误[orderId/txnAmt/txnTime/backUrl/currencyCode]' };
    }
    const payTimeout_ms = f.payTimeout ? parseChinaStamp(f.payTimeout) : txnTime_ms + DEFAULT_PAY_WINDOW_MS;
    if (payTimeout_ms === undefined || payTimeout_ms <= core.now()) return { respCode: '10', respMsg: '报文格式错误[payTimeout]' };
    if (f.accSplitData !== undefined) return openCombined(core, f, method, payTimeout_ms);
    const existing = core.trade('unionpay', f.orderId!);
    if (existing && existing.extra.txnTime !== f.txnTime) return { respCode: '12', respMsg: '重复交易' };
    try {
      return core.createTrade({
        channel: 'unionpay',
        payNo: f.orderId!,
        amount_fen: Number(f.txnAmt),
        subject: /commodityName=([^&}]*)/.exec(f.riskRateInfo ?? '')?.[1] ?? f.orderId!,
        method,
        notifyUrl: f.backUrl!,
        returnUrl: f.frontUrl,
        expires_at_ms: payTimeout_ms,
        extra: { txnTime: f.txnTime!, bizType: f.bizType ?? '', txnSubType: f.txnSubType ?? '', reqReserved: f.reqReserved ?? '' },
      });
    } catch (error) {
      if (error instanceof SandboxError) return { respCode: '12', respMsg: '重复交易' };
      throw error;
    }
  }

  // The browser's form post: a good one lands on the cashier, a bad one on UnionPay's error page.
  server.post(`${API}/frontTransReq.do`, async (request, reply) => {
    const fields = formDecode(String(request.body ?? ''));
    const refusal = check(fields) ?? (fields!.txnType === '01' && fields!.txnSubType === '01' && ['07', '08'].includes(fields!.channelType ?? '') ? undefined : { respCode: '10', respMsg: '报文格式错误[txnType/channelType]' });
    const opened = refusal ?? openTrade(fields!, fields!.channelType === '07' ? 'page' : 'h5');
    if ('respCode' in opened) {
      return reply
        .type('text/html; charset=utf-8')
        .send(`<!doctype html><html><head><meta charset="utf-8"><title>银联在线支付 (sandbox)</title></head><body><p id="respCode">${opened.respCode}</p><p id="respMsg">${opened.respMsg}</p></body></html>`);
    }
    return reply.redirect(cashierUrl(base(), 'unionpay', opened.payNo), 302);
  });

  server.post(`${API}/backTransReq.do`, async (request, reply) => {
    const fields = formDecode(String(request.body ?? ''));
    const refusal = check(fields);
    if (refusal) return send(reply, fields, refusal);
    const f = fields!;
    if (f.txnType === '01' && f.txnSubType === '07') {
      const opened = openTrade(f, 'qr');
      if ('respCode' in opened) return send(reply, f, opened);
      return send(reply, f, { respCode: '00', respMsg: '成功[0000000]', qrCode: cashierUrl(base(), 'unionpay', opened.payNo) });
    }
    if (f.txnType === '04') return send(reply, f, refund(f));
    return send(reply, f, { respCode: '32', respMsg: '无此交易权限' });
  });

  function refund(f: AcpFields): AcpFields {
    if (!ORDER_ID.test(f.orderId ?? '') || !AMOUNT.test(f.txnAmt ?? '') || parseChinaStamp(f.txnTime ?? '') === undefined || !f.origQryId) {
      return { respCode: '10', respMsg: '报文格式错误[orderId/txnAmt/txnTime/origQryId]' };
    }
    const target = splitRefundTarget(core, f);
    if ('respCode' in target) return target;
    const trade = target.trade;
    if (core.findRefund('unionpay', f.orderId!)) return { respCode: '12', respMsg: '重复交易' };
    if (refunds.size >= MAX_SANDBOX_REFUNDS) refunds.delete(refunds.keys().next().value!);
    // Kept before the core refunds, since the core notifies (and the notifier reads this) at once.
    refunds.set(f.orderId!, { txnTime: f.txnTime!, reqReserved: f.reqReserved ?? '' });
    try {
      const made = core.refund('unionpay', trade.payNo, { refundNo: f.orderId!, amount_fen: Number(f.txnAmt), notifyUrl: f.backUrl });
      return { respCode: '00', respMsg: '成功[0000000]', queryId: queryIdOf(made.channelRefundNo), origQryId: f.origQryId, txnAmt: f.txnAmt! };
    } catch (error) {
      refunds.delete(f.orderId!);
      if (!(error instanceof SandboxError)) throw error;
      if (error.code === 'refund_exceeds') return { respCode: '30', respMsg: '交易未通过[退货金额超限]' };
      return { respCode: '35', respMsg: '原交易不存在或状态不正确' };
    }
  }

  server.post(`${API}/queryTrans.do`, async (request, reply) => {
    const fields = formDecode(String(request.body ?? ''));
    const refusal = check(fields);
    if (refusal) return send(reply, fields, refusal);
    return send(reply, fields, queryAnswer(fields!.orderId ?? '', fields!.txnTime ?? ''));
  });

  function queryAnswer(orderId: string, txnTime: string): AcpFields {
    const notFound = { respCode: '34', respMsg: '查无此交易' };
    const combined = core.combined('unionpay', orderId);
    if (combined && combined.extra.txnTime === txnTime) {
      const trades = core.tradesOf(combined);
      if (trades.length > 0 && trades.every((sub) => sub.paid_at_ms !== undefined)) {
        const { respCode: _r, respMsg: _m, ...paid } = combinedPaidFields(combined, trades, keys.merId);
        return { ...paid, txnType: '00', txnSubType: '00', respCode: '00', respMsg: '成功[0000000]', origRespCode: '00', origRespMsg: '成功[0000000]' };
      }
      if (trades.some((sub) => sub.state !== 'WAIT_BUYER_PAY') || core.now() > combined.expires_at_ms) return notFound;
      return { respCode: '00', respMsg: '成功[0000000]', origRespCode: '05', origRespMsg: '交易已受理，请稍后查询交易结果' };
    }
    const trade = combined ? undefined : core.trade('unionpay', orderId);
    if (trade && trade.extra.txnTime === txnTime) {
      if (trade.paid_at_ms !== undefined) {
        const { respCode: _r, respMsg: _m, ...paid } = paidFields(trade, keys.merId);
        return { ...paid, txnType: '00', txnSubType: '00', respCode: '00', respMsg: '成功[0000000]', origRespCode: '00', origRespMsg: '成功[0000000]' };
      }
      // An order never paid leaves nothing behind once its payTimeout has passed.
      if (trade.state !== 'WAIT_BUYER_PAY' || core.now() > trade.expires_at_ms) return notFound;
      return { respCode: '00', respMsg: '成功[0000000]', origRespCode: '05', origRespMsg: '交易已受理，请稍后查询交易结果' };
    }
    const sent = refunds.get(orderId);
    const found = core.findRefund('unionpay', orderId);
    if (!found || !sent || sent.txnTime !== txnTime) return notFound;
    const { respCode: _r, respMsg: _m, ...fields } = refundFields(found.trade, found.refund, keys.merId, sent);
    const ok = { ...fields, txnType: '00', txnSubType: '00', respCode: '00', respMsg: '成功[0000000]' };
    if (found.refund.state === 'SUCCESS') return { ...ok, origRespCode: '00', origRespMsg: '成功[0000000]' };
    if (found.refund.state === 'PROCESSING') return { ...ok, origRespCode: '05', origRespMsg: '交易已受理，请稍后查询交易结果' };
    return { ...ok, origRespCode: '01', origRespMsg: '交易失败[sandbox failRefund]' };
  }

  server.post(`${API}/fileTransfer.do`, async (request, reply) => {
    const fields = formDecode(String(request.body ?? ''));
    const refusal = check(fields);
    if (refusal) return send(reply, fields, refusal);
    const f = fields!;
    if (f.txnType !== '76' || f.fileType !== '00' || !/^\d{4}$/.test(f.settleDate ?? '')) return send(reply, f, { respCode: '10', respMsg: '报文格式错误[txnType/fileType/settleDate]' });
    const date = latestDateFor(f.settleDate!, core.now());
    const { fileName, zip } = billZip(date, keys.merId, core.billRows('unionpay', date).map((row) => ({ ...zmRowOf(row, keys.merId), ...zmSplitFields(core, row) })));
    return send(reply, f, { respCode: '00', respMsg: '成功[0000000]', fileType: '00', settleDate: f.settleDate!, fileName, fileContent: encodeFileContent(zip) });
  });
}

/** The YYYY-MM-DD of the latest settlement day named MMDD that is not in the future. */
function latestDateFor(mmdd: string, now_ms: number): string {
  const today = chinaDate(now_ms);
  const candidate = `${today.slice(0, 4)}-${mmdd.slice(0, 2)}-${mmdd.slice(2)}`;
  return candidate <= today ? candidate : `${Number(today.slice(0, 4)) - 1}-${mmdd.slice(0, 2)}-${mmdd.slice(2)}`;
}
