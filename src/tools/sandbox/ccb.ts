import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, randomInt, sign } from 'node:crypto';
import type { CcbSettings } from '../../payments/channels/ccb.ts';
import {
  CURCODE_CNY, SANDBOX_NOTIFY_FIELD, SANDBOX_RETURN_FIELD, TXCODE_PAGE, TXCODE_QR, fenToYuan,
  notificationSignedText, parseChinaTime, pubOf, requestMac, yuanToFen,
} from '../../payments/channels/ccb/protocol.ts';
import { chinaDate } from '../../payments/channels/types.ts';
import { registerEbs } from './ccb/ebs.ts';
import { MARKET_BASE_PATH, SANDBOX_CCB_MARKET, marketPaidNotification, registerMarket } from './ccb/market.ts';
import type { SandboxCore } from './core.ts';
import type { ChannelNotifier } from './notifications.ts';
import { SandboxError, type SandboxEvent } from './trades.ts';
import { cashierUrl, type SandboxChannelModule, type SandboxServer } from './module.ts';

/**
 * CCB LongPay as the sandbox plays it: the ccbMain gateway (MAC-checked; 530550 answers JSON
 * leading to the QR content, 520100 sends the browser to the cashier), MD5withRSA-signed
 * notifications from "CCB's" key, and the merchant's 外联平台 client (sandbox/ccb/ebs.ts).
 */

export interface CcbSandboxKeys {
  merchantId: string;
  posId: string;
  branchId: string;
  /** The bank's signing key (PKCS#8 PEM); only the sandbox holds it. */
  ccbPrivateKeyPem: string;
  /** The bank's public key as CCB hands it to merchants: hex of the X.509 DER. */
  ccbPublicKeyHex: string;
  ebsUserId: string;
  ebsPassword: string;
}

/**
 * Delays before each resend while the merchant does not answer 200 (?): CCB publishes no
 * schedule; this is a plausible one, five retries over nearly four hours.
 */
export const CCB_RETRY_SCHEDULE_MS = [120_000, 600_000, 1_800_000, 3_600_000, 7_200_000] as const;
/** An order without TIMEOUT stays payable this long in the sandbox. */
const DEFAULT_ORDER_LIFETIME_MS = 24 * 3600_000;
/** Error codes the gateway answers with; CCB's real ones were not found, these are ours. */
const GATEWAY_ERRORS = {
  mac: ['0130Z1101001', 'MAC校验失败'],
  merchant: ['0130Z1101002', '商户信息不存在'],
  field: ['0130Z1101003', '交易要素不合法'],
  expired: ['0130Z1101004', '订单已超时'],
  orderExists: ['0130Z1101005', '订单号重复'],
} as const;

export const ccbSandbox: SandboxChannelModule<CcbSandboxKeys, CcbSettings> = {
  name: 'ccb',

  generateKeys() {
    // CCB's keys are 1024-bit RSA with a small exponent (their hex ends in 020111: e = 17).
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 1024, publicExponent: 17 });
    return {
      merchantId: `105${String(randomInt(0, 1e9)).padStart(9, '0')}${String(randomInt(0, 1000)).padStart(3, '0')}`,
      posId: String(randomInt(0, 1e9)).padStart(9, '0'),
      branchId: '110000000',
      ccbPrivateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      ccbPublicKeyHex: publicKey.export({ type: 'spki', format: 'der' }).toString('hex'),
      ebsUserId: `${randomInt(100, 1000)}`,
      ebsPassword: randomBytes(9).toString('base64url'),
    };
  },

  settingsFor(keys, sandboxUrl) {
    return {
      merchantId: keys.merchantId,
      posId: keys.posId,
      branchId: keys.branchId,
      ccbPublicKey: keys.ccbPublicKeyHex,
      gatewayUrl: `${sandboxUrl}/ccb/CCBIS/ccbMain?CCB_IBSVersion=V6`,
      ebsUrl: `${sandboxUrl}/ccb/ebs`,
      ebsUserId: keys.ebsUserId,
      ebsPassword: keys.ebsPassword,
      billUrl: `${sandboxUrl}/ccb/ebs/files`,
      timeout_ms: 10_000,
      sendMerchantUrls: true,
      market: { url: `${sandboxUrl}${MARKET_BASE_PATH}`, ...SANDBOX_CCB_MARKET },
    };
  },

  register(server, core, keys, base) {
    const privateKey = createPrivateKey(keys.ccbPrivateKeyPem);
    const pub = pubOf(createPublicKey({ key: Buffer.from(keys.ccbPublicKeyHex, 'hex'), format: 'der', type: 'spki' }));
    const signText = (text: string) => sign('md5', Buffer.from(text, 'utf8'), privateKey).toString('hex');
    core.registerNotifier('ccb', notifier(keys, signText));
    registerGateway(server, core, keys, pub, base);
    registerEbs(server, core, keys);
    registerMarket(server, core, pub, signText, base);
  },
};

function registerGateway(server: SandboxServer, core: SandboxCore, keys: CcbSandboxKeys, pub: string, base: () => string): void {
  const handle = async (request: { method: string; url: string; body: unknown }, reply: import('fastify').FastifyReply) => {
    const query = request.url.includes('?') ? request.url.slice(request.url.indexOf('?') + 1) : '';
    const fields = Object.fromEntries(new URLSearchParams(query));
    if (request.method === 'POST' && typeof request.body === 'string') Object.assign(fields, Object.fromEntries(new URLSearchParams(request.body)));
    const txcode = fields.TXCODE ?? '';
    const refuse = ([code, message]: readonly [string, string]) =>
      txcode === TXCODE_QR
        ? reply.type('application/json; charset=utf-8').send({ SUCCESS: 'false', ERRCODE: code, ERRMSG: message })
        : reply.type('text/html; charset=utf-8').send(`<!doctype html><html><body><h1>CCB sandbox</h1><p id="error">${code} ${message}</p></body></html>`);

    if (txcode !== TXCODE_QR && txcode !== TXCODE_PAGE) return refuse(GATEWAY_ERRORS.field);
    if (fields.MERCHANTID !== keys.merchantId || fields.POSID !== keys.posId || fields.BRANCHID !== keys.branchId) return refuse(GATEWAY_ERRORS.merchant);
    if ((fields.MAC ?? '').toLowerCase() !== requestMac(fields, pub)) return refuse(GATEWAY_ERRORS.mac);
    let amount_fen: number;
    try {
      amount_fen = yuanToFen(fields.PAYMENT ?? '');
    } catch {
      return refuse(GATEWAY_ERRORS.field);
    }
    if (amount_fen <= 0 || fields.CURCODE !== CURCODE_CNY || !fields.ORDERID || fields.ORDERID.length > 30) return refuse(GATEWAY_ERRORS.field);
    const timeout = fields.TIMEOUT ? parseChinaTime(fields.TIMEOUT) : core.now() + DEFAULT_ORDER_LIFETIME_MS;
    if (timeout === undefined) return refuse(GATEWAY_ERRORS.field);
    if (timeout <= core.now()) return refuse(GATEWAY_ERRORS.expired);
    try {
      core.createTrade({
        channel: 'ccb',
        payNo: fields.ORDERID,
        amount_fen,
        subject: fields.REMARK1 || fields.ORDERID,
        method: txcode === TXCODE_QR ? 'qr' : 'page',
        notifyUrl: fields[SANDBOX_NOTIFY_FIELD] ?? '',
        returnUrl: fields[SANDBOX_RETURN_FIELD],
        expires_at_ms: timeout,
        extra: { REMARK1: fields.REMARK1 ?? '', REMARK2: fields.REMARK2 ?? '', TXCODE: txcode, TYPE: fields.TYPE ?? '' },
      });
    } catch (error) {
      if (error instanceof SandboxError && error.code === 'trade_exists') return refuse(GATEWAY_ERRORS.orderExists);
      throw error;
    }
    if (txcode === TXCODE_PAGE) return reply.redirect(cashierUrl(base(), 'ccb', fields.ORDERID), 302);
    const payUrl = `${base()}/ccb/CCBIS/QR?${new URLSearchParams({ MERCHANTID: keys.merchantId, ORDERID: fields.ORDERID })}`;
    return reply.type('application/json; charset=utf-8').send({ SUCCESS: 'true', PAYURL: payUrl });
  };
  server.get('/ccb/CCBIS/ccbMain', (request, reply) => handle(request, reply));
  server.post('/ccb/CCBIS/ccbMain', (request, reply) => handle(request, reply));

  // The PAYURL's answer: the QR content, URL-encoded as CCB sends it.
  server.get('/ccb/CCBIS/QR', async (request, reply) => {
    const { MERCHANTID, ORDERID } = request.query as Record<string, string | undefined>;
    const trade = MERCHANTID === keys.merchantId && ORDERID ? core.trade('ccb', ORDERID) : undefined;
    if (!trade) return reply.send({ SUCCESS: 'false', ERRCODE: GATEWAY_ERRORS.field[0], ERRMSG: GATEWAY_ERRORS.field[1] });
    return reply.send({ SUCCESS: 'true', QRURL: encodeURIComponent(cashierUrl(base(), 'ccb', trade.payNo)) });
  });
}

/**
 * CCB notifies payments only: refunds are answered at once by 5W1004 (and 惠市宝's refundOrder),
 * closes not at all. A combined payment is 惠市宝's main order, notified in its own form.
 */
function notifier(keys: CcbSandboxKeys, signText: (text: string) => string): ChannelNotifier {
  return {
    build(event: SandboxEvent, options) {
      if (event.kind === 'combined_paid') return marketPaidNotification(event.combined, event.trades, signText, options);
      if (event.kind !== 'paid' || !event.trade.notifyUrl) return undefined;
      const trade = event.trade;
      const fields = new URLSearchParams();
      fields.set('POSID', keys.posId);
      fields.set('BRANCHID', keys.branchId);
      fields.set('ORDERID', trade.payNo);
      fields.set('PAYMENT', fenToYuan(trade.amount_fen));
      fields.set('CURCODE', CURCODE_CNY);
      fields.set('REMARK1', trade.extra.REMARK1 ?? '');
      fields.set('REMARK2', trade.extra.REMARK2 ?? '');
      fields.set('ACC_TYPE', trade.method === 'qr' ? 'WX' : '12');
      fields.set('SUCCESS', 'Y');
      // The anti-phishing fields come back only to a request that asked with TYPE=1.
      if (trade.extra.TYPE === '1') {
        fields.set('TYPE', '1');
        fields.set('REFERER', '');
        fields.set('CLIENTIP', '');
      }
      fields.set('ACCDATE', chinaDate(trade.paid_at_ms!).replaceAll('-', ''));
      const signature = signText(notificationSignedText(fields));
      fields.set('SIGN', options.misSign ? spoil(signature) : signature);
      return { url: trade.notifyUrl, headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: fields.toString() };
    },
    acknowledged: (answer) => answer.status === 200,
    retrySchedule_ms: CCB_RETRY_SCHEDULE_MS,
  };
}

function spoil(hex: string): string {
  const last = hex.at(-1) === '0' ? '1' : '0';
  return hex.slice(0, -1) + last;
}


