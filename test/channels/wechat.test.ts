import { createCipheriv, createPrivateKey, createPublicKey, createSign, createVerify, generateKeyPairSync, randomBytes, X509Certificate, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chinaDate, type ChannelNotice, type InboundRequest, type PaymentChannel } from '../../src/payments/channels/types.ts';
import { MAX_WECHAT_SUB_ORDERS, MIN_COMBINED_AGE_BEFORE_CLOSE_MS, wechatChannel, wechatSettingsFromEnv, type WechatSettings } from '../../src/payments/channels/wechat.ts';
import { authorization, decryptResource } from '../../src/payments/channels/wechat/protocol.ts';
import { isAppError } from '../../src/platform/errors.ts';
import { cashierUrl } from '../../src/tools/sandbox/module.ts';
import { startSandbox, type SandboxHandle } from '../../src/tools/sandbox/server.ts';
import { wechatSandbox, type WechatSandboxKeys } from '../../src/tools/sandbox/wechat.ts';
import { WECHAT_RETRY_SCHEDULE_MS } from '../../src/tools/sandbox/wechat/notifier.ts';
import { MAX_CLOCK_SKEW_S } from '../../src/payments/channels/wechat/protocol.ts';

/**
 * WeChat Pay API v3 against a started sandbox, no mocks: our adapter signs what it sends and
 * believes nothing it is not signed; the sandbox believes nothing the merchant did not sign.
 * Invariants: a payment is learnt once and only from a genuine notice; money is refunded at
 * most once per refund number and never beyond what was paid; the bill lists exactly the
 * day's payments and refunds.
 */

let keys: WechatSandboxKeys;
let sandbox: SandboxHandle;
let settings: WechatSettings;
let channel: PaymentChannel;
let notify: Server;
let notifyUrl: string;
const received: Array<{ request: InboundRequest; notice?: ChannelNotice; error?: unknown; status: number }> = [];
const stranger = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
let serial = 0;
const newPayNo = () => `WX${Date.now()}${String(++serial).padStart(4, '0')}`;

beforeAll(async () => {
  keys = wechatSandbox.generateKeys();
  sandbox = await startSandbox({ modules: [{ module: wechatSandbox, keys }], core: { retryScale: 0.001 } });
  settings = wechatSandbox.settingsFor(keys, sandbox.url);
  channel = wechatChannel(settings, Date.now);
  // The merchant's notify endpoint: raw request in, the adapter's answer out.
  notify = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(req.headers)) if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
    const request: InboundRequest = { method: req.method!, url: req.url!, headers, rawBody: Buffer.concat(chunks).toString('utf8') };
    const entry: (typeof received)[number] = { request, status: 0 };
    let answer;
    try {
      entry.notice = await channel.parseNotification(request);
      answer = channel.answer('accepted');
    } catch (error) {
      entry.error = error;
      answer = channel.answer('rejected');
    }
    entry.status = answer.status;
    received.push(entry);
    res.writeHead(answer.status, { 'content-type': answer.contentType }).end(answer.body);
  });
  await new Promise<void>((resolve) => notify.listen(0, '127.0.0.1', resolve));
  const address = notify.address();
  notifyUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/notify/wechat`;
});

afterAll(async () => {
  await sandbox?.close();
  await new Promise((resolve) => notify?.close(resolve));
});

async function rejectsWith(promise: Promise<unknown>, code: string): Promise<Record<string, unknown> | undefined> {
  const error = await promise.then(() => undefined, (e: unknown) => e);
  expect(isAppError(error) ? error.code : error).toBe(code);
  return isAppError(error) ? error.details : undefined;
}

function order(payNo: string, amount_fen: number, method: 'qr' | 'h5' | 'jsapi' | 'app' | 'page' = 'qr', subject = 'Community box') {
  return { payNo, amount_fen, subject, expires_at_ms: Date.now() + 15 * 60_000, method, notifyUrl, returnUrl: 'https://shop.example/paid', payerId: 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o' } as const;
}

const payClick = (payNo: string) => fetch(`${sandbox.url}/sandbox/cashier/wechat/${payNo}/pay`, { method: 'POST' });

async function paidTrade(amount_fen: number, subject?: string): Promise<string> {
  const payNo = newPayNo();
  await channel.create(order(payNo, amount_fen, 'qr', subject));
  expect((await payClick(payNo)).status).toBe(200);
  return payNo;
}

function noticesFor(payNo: string): ChannelNotice[] {
  const about = (notice: ChannelNotice): boolean => {
    if (notice.kind === 'trade') return notice.trade.payNo === payNo;
    if (notice.kind === 'refund') return notice.refund.payNo === payNo;
    return notice.combineNo === payNo || notice.trades.some((trade) => trade.payNo === payNo);
  };
  return received.flatMap((r) => (r.notice && about(r.notice) ? [r.notice] : []));
}

const verifies = (message: string, signature: string, publicKeyPem: string) => createVerify('RSA-SHA256').update(message).verify(createPublicKey(publicKeyPem), signature, 'base64');

describe('create', () => {
  it('offers QR, H5, JSAPI and app, pointing at the cashier or signing the client parameters', async () => {
    expect(channel.methods).toEqual(['qr', 'h5', 'jsapi', 'app']);
    const qrNo = newPayNo();
    expect(await channel.create(order(qrNo, 1990))).toEqual({ kind: 'qr_code', codeUrl: cashierUrl(sandbox.url, 'wechat', qrNo) });

    const h5No = newPayNo();
    const h5 = await channel.create(order(h5No, 1990, 'h5'));
    expect(h5.kind === 'redirect' && h5.url.startsWith(cashierUrl(sandbox.url, 'wechat', h5No) + '?prepay_id=wx')).toBe(true);
    expect(h5.kind === 'redirect' && new URL(h5.url).searchParams.get('redirect_url')).toBe('https://shop.example/paid');

    const jsapi = await channel.create(order(newPayNo(), 1990, 'jsapi'));
    if (jsapi.kind !== 'sdk_params') throw new Error(`jsapi gave ${jsapi.kind}`);
    const p = jsapi.params;
    expect(p).toMatchObject({ appId: keys.appId, signType: 'RSA', package: expect.stringMatching(/^prepay_id=wx/) });
    expect(verifies(`${p.appId}\n${p.timeStamp}\n${p.nonceStr}\n${p.package}\n`, p.paySign!, keys.merchant.publicKeyPem)).toBe(true);

    const app = await channel.create(order(newPayNo(), 1990, 'app'));
    if (app.kind !== 'sdk_params') throw new Error(`app gave ${app.kind}`);
    const a = app.params;
    expect(a).toMatchObject({ appid: keys.appId, partnerid: keys.mchId, package: 'Sign=WXPay' });
    expect(verifies(`${a.appid}\n${a.timestamp}\n${a.noncestr}\n${a.prepayid}\n`, a.sign!, keys.merchant.publicKeyPem)).toBe(true);
  });

  it('refuses what WeChat does not offer or cannot take', async () => {
    await rejectsWith(channel.create(order(newPayNo(), 100, 'page')), 'pay_method_not_supported');
    await rejectsWith(channel.create({ ...order(newPayNo(), 100, 'jsapi'), payerId: undefined }), 'invalid_field');
    // out_trade_no is 6 to 32 characters at WeChat.
    const details = await rejectsWith(channel.create(order('X'.repeat(33), 100)), 'channel_refused');
    expect(details).toMatchObject({ status: 400, code: 'PARAM_ERROR' });
  });
});

describe('query', () => {
  it('says pending before the Pay click and succeeded after, with amount, transaction id and time', async () => {
    const payNo = newPayNo();
    await channel.create(order(payNo, 2550));
    expect(await channel.query(payNo)).toEqual({ payNo, state: 'pending', amount_fen: 2550 });
    const clicked = (await (await payClick(payNo)).json()) as { tradeNo: string; paid_at_ms: number };
    expect(await channel.query(payNo)).toEqual({
      payNo,
      state: 'succeeded',
      channelTradeNo: clicked.tradeNo,
      amount_fen: 2550,
      paid_at_ms: Math.floor(clicked.paid_at_ms / 1000) * 1000,
    });
    expect(await channel.query(newPayNo())).toEqual({ payNo: expect.any(String), state: 'not_found' });
  });
});

describe('notifications', () => {
  it('one verified trade notice per payment, acknowledged by the answer that stops retries', async () => {
    const payNo = await paidTrade(990);
    await sandbox.core.untilDelivered();
    expect(noticesFor(payNo)).toEqual([
      { kind: 'trade', trade: { payNo, state: 'succeeded', channelTradeNo: sandbox.core.trade('wechat', payNo)!.tradeNo, amount_fen: 990, paid_at_ms: expect.any(Number) } },
    ]);
    const deliveries = sandbox.core.deliveries.filter((d) => d.channel === 'wechat').slice(-1);
    expect(deliveries).toMatchObject([{ status: channel.answer('accepted').status, acknowledged: true }]);
    expect([200, 204]).toContain(channel.answer('accepted').status);
    expect(channel.answer('rejected').status).toBeGreaterThanOrEqual(400);
    expect(WECHAT_RETRY_SCHEDULE_MS.map((ms) => ms / 1000)).toEqual([15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600, 10800, 10800, 10800, 21600, 21600]);
  });

  it('a mis-signed attempt is rejected and the retry accepted', async () => {
    const before = received.length;
    const faults = await fetch(`${sandbox.url}/sandbox/faults`, { method: 'POST', body: JSON.stringify({ misSign: 1 }) });
    expect(faults.status).toBe(200);
    const payNo = await paidTrade(1200);
    await sandbox.core.untilDelivered();
    const attempts = received.slice(before);
    expect(attempts).toHaveLength(2);
    expect(isAppError(attempts[0]!.error, 'notification_rejected')).toBe(true);
    expect(attempts[0]!.status).toBe(channel.answer('rejected').status);
    expect(attempts[1]!.notice).toMatchObject({ kind: 'trade', trade: { payNo, state: 'succeeded' } });
    expect(sandbox.core.deliveries.slice(-2).map((d) => [d.misSigned, d.acknowledged])).toEqual([[true, false], [false, true]]);
  });

  it('rejects forgeries: tampered, foreign key, unsigned, unknown or mismatched serial, stale, probe, wrong APIv3 key', async () => {
    const genuine = received.find((r) => r.notice?.kind === 'trade')!.request;
    const [current, certificate] = keys.platform as [WechatSandboxKeys['platform'][0], WechatSandboxKeys['platform'][0]];
    // One instant for the signer and the verifier: read twice, a loaded machine would let the
    // second read cross a second and turn "301 s in the future" into an accepted 300 s.
    const at_ms = Date.now();
    const now_s = Math.floor(at_ms / 1000);
    const channel = wechatChannel(settings, () => at_ms);
    const signed = (body: string, o: { key?: string | KeyObject; serial?: string; ts?: number } = {}): InboundRequest => {
      const ts = String(o.ts ?? now_s);
      const nonce = randomBytes(16).toString('hex');
      const signature = createSign('RSA-SHA256').update(`${ts}\n${nonce}\n${body}\n`).sign(o.key ?? current.privateKeyPem, 'base64');
      const headers = { 'content-type': 'application/json', 'wechatpay-timestamp': ts, 'wechatpay-nonce': nonce, 'wechatpay-signature': signature, 'wechatpay-serial': o.serial ?? current.serial };
      return { method: 'POST', url: '/notify/wechat', headers, rawBody: body };
    };
    const sealedWith = (apiV3Key: string): string => {
      const nonce = randomBytes(6).toString('hex');
      const cipher = createCipheriv('aes-256-gcm', Buffer.from(apiV3Key), Buffer.from(nonce)).setAAD(Buffer.from('transaction'));
      const plain = JSON.stringify({ mchid: keys.mchId, out_trade_no: 'FORGED0001', transaction_id: '4200000000', trade_state: 'SUCCESS', success_time: '2024-01-01T10:00:00+08:00', amount: { total: 1 } });
      const ciphertext = Buffer.concat([cipher.update(plain), cipher.final(), cipher.getAuthTag()]).toString('base64');
      return JSON.stringify({ id: 'x', create_time: '2024-01-01T10:00:00+08:00', resource_type: 'encrypt-resource', event_type: 'TRANSACTION.SUCCESS', summary: '支付成功', resource: { original_type: 'transaction', algorithm: 'AEAD_AES_256_GCM', ciphertext, nonce, associated_data: 'transaction' } });
    };

    // Controls: the helpers make notices the adapter accepts, with either kind of platform key.
    expect((await channel.parseNotification(signed(genuine.rawBody))).kind).toBe('trade');
    expect((await channel.parseNotification(signed(genuine.rawBody, { key: certificate.privateKeyPem, serial: certificate.serial }))).kind).toBe('trade');
    expect(await channel.parseNotification(signed(sealedWith(keys.apiV3Key)))).toMatchObject({ trade: { payNo: 'FORGED0001', amount_fen: 1 } });
    // The skew limit itself is accepted, on either side.
    expect((await channel.parseNotification(signed(genuine.rawBody, { ts: now_s - MAX_CLOCK_SKEW_S }))).kind).toBe('trade');
    expect((await channel.parseNotification(signed(genuine.rawBody, { ts: now_s + MAX_CLOCK_SKEW_S }))).kind).toBe('trade');

    const { 'wechatpay-signature': _dropped, ...unsigned } = genuine.headers;
    const forgeries: Array<[string, InboundRequest]> = [
      ['body tampered after signing', { ...genuine, rawBody: genuine.rawBody.replace('支付成功', '支付成功 ') }],
      ['signed with a key not the platform’s', signed(genuine.rawBody, { key: stranger })],
      ['signature missing', { ...genuine, headers: unsigned }],
      ['unknown serial', signed(genuine.rawBody, { serial: 'PUB_KEY_ID_0000000000000000000000000000' })],
      ['serial of the other platform key', signed(genuine.rawBody, { serial: certificate.serial })],
      ['stale timestamp', signed(genuine.rawBody, { ts: now_s - MAX_CLOCK_SKEW_S - 1 })],
      ['timestamp from the future', signed(genuine.rawBody, { ts: now_s + MAX_CLOCK_SKEW_S + 1 })],
      ['WeChat’s signature probe', { ...genuine, headers: { ...genuine.headers, 'wechatpay-signature': `WECHATPAY/SIGNTEST/${randomBytes(32).toString('base64')}` } }],
      ['sealed with another APIv3 key', signed(sealedWith(randomBytes(16).toString('hex')))],
      ['not a POST', { ...genuine, method: 'GET' }],
    ];
    for (const [name, request] of forgeries) {
      const error = await channel.parseNotification(request).then(() => undefined, (e: unknown) => e);
      expect(isAppError(error, 'notification_rejected') ? name : [name, error]).toBe(name);
    }
  });
});

describe('close', () => {
  it('closes an unpaid trade for good, reports a paid one, and knows an unknown one', async () => {
    const payNo = newPayNo();
    await channel.create(order(payNo, 500));
    expect(await channel.close(payNo)).toBe('closed');
    expect((await payClick(payNo)).status).toBe(409);
    expect(await channel.query(payNo)).toMatchObject({ state: 'closed' });
    await rejectsWith(channel.create(order(payNo, 500)), 'channel_refused');
    expect(await channel.close(await paidTrade(500))).toBe('already_paid');
    expect(await channel.close(newPayNo())).toBe('not_found');
  });
});

describe('refund', () => {
  it('partial then the rest, once per refund number, never past the paid amount; notices follow', async () => {
    const payNo = await paidTrade(1000);
    const request = { payNo, refundNo: `${payNo}-R1`, amount_fen: 300, total_fen: 1000, reason: 'one item short', notifyUrl };
    const first = await channel.refund(request);
    expect(first).toMatchObject({ payNo, refundNo: request.refundNo, state: 'processing', amount_fen: 300 });
    const again = await channel.refund(request);
    expect(again).toMatchObject({ state: 'succeeded', channelRefundNo: first.channelRefundNo, amount_fen: 300 });
    expect(sandbox.core.refunded_fen(sandbox.core.trade('wechat', payNo)!)).toBe(300);

    await channel.refund({ ...request, refundNo: `${payNo}-R2`, amount_fen: 700 });
    expect(sandbox.core.refunded_fen(sandbox.core.trade('wechat', payNo)!)).toBe(1000);
    expect(await rejectsWith(channel.refund({ ...request, refundNo: `${payNo}-R3`, amount_fen: 1 }), 'channel_refused')).toMatchObject({ code: 'NOT_ENOUGH' });
    expect(await rejectsWith(channel.refund({ ...request, amount_fen: 299 }), 'channel_refused')).toMatchObject({ code: 'INVALID_REQUEST' });

    expect(await channel.queryRefund(payNo, request.refundNo)).toMatchObject({ state: 'succeeded', amount_fen: 300, succeeded_at_ms: expect.any(Number) });
    expect(await channel.queryRefund(payNo, `${payNo}-none`)).toEqual({ payNo, refundNo: `${payNo}-none`, state: 'not_found' });
    expect(await channel.query(payNo)).toMatchObject({ state: 'succeeded', amount_fen: 1000 });

    await sandbox.core.untilDelivered();
    const refunds = noticesFor(payNo).filter((n) => n.kind === 'refund');
    expect(refunds).toEqual([
      { kind: 'refund', refund: { payNo, refundNo: `${payNo}-R1`, state: 'succeeded', channelRefundNo: first.channelRefundNo, amount_fen: 300, succeeded_at_ms: expect.any(Number) } },
      { kind: 'refund', refund: expect.objectContaining({ refundNo: `${payNo}-R2`, state: 'succeeded', amount_fen: 700 }) },
    ]);
  });

  it('a refund the channel fails is reported failed, by the answer, the query and the notice', async () => {
    const payNo = await paidTrade(800);
    sandbox.core.setFaults({ failRefund: 1 });
    const refund = { payNo, refundNo: `${payNo}-F`, amount_fen: 800, total_fen: 800, reason: 'cancelled', notifyUrl };
    expect(await channel.refund(refund)).toMatchObject({ state: 'failed', amount_fen: 800 });
    expect(await channel.queryRefund(payNo, refund.refundNo)).toMatchObject({ state: 'failed' });
    await sandbox.core.untilDelivered();
    expect(noticesFor(payNo).filter((n) => n.kind === 'refund')).toMatchObject([{ refund: { refundNo: refund.refundNo, state: 'failed' } }]);
  });
});

describe('requests not signed by the merchant', () => {
  it('are refused with 401 SIGN_ERROR, signed by the platform', async () => {
    const impostor = wechatChannel({ ...settings, merchantPrivateKeyPem: stranger.export({ type: 'pkcs8', format: 'pem' }) as string }, Date.now);
    expect(await rejectsWith(impostor.query(newPayNo()), 'channel_refused')).toMatchObject({ status: 401, code: 'SIGN_ERROR' });

    const response = await fetch(`${settings.baseUrl}/v3/pay/transactions/out-trade-no/ANY0001?mchid=${keys.mchId}`);
    const body = await response.text();
    expect([response.status, JSON.parse(body).code]).toEqual([401, 'SIGN_ERROR']);
    const h = (n: string) => response.headers.get(n)!;
    expect(verifies(`${h('wechatpay-timestamp')}\n${h('wechatpay-nonce')}\n${body}\n`, h('wechatpay-signature'), keys.platform[0]!.publicKeyPem)).toBe(true);
  });

  it('and answers we cannot verify are not believed', async () => {
    const wrongPlatform = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' }) as string;
    const misled = wechatChannel({ ...settings, platformKeys: [{ serial: keys.platform[0]!.serial, publicKeyPem: wrongPlatform }] }, Date.now);
    await rejectsWith(misled.query(newPayNo()), 'channel_unavailable');
    const unaware = wechatChannel({ ...settings, platformKeys: [settings.platformKeys[1]!] }, Date.now);
    await rejectsWith(unaware.query(newPayNo()), 'channel_unavailable');
  });
});

describe('bill', () => {
  it('lists exactly the day’s payments and refunds', async () => {
    const payNo = await paidTrade(4321, 'Apples, 2 kg'); // a comma in free text
    await channel.refund({ payNo, refundNo: `${payNo}-B`, amount_fen: 321, total_fen: 4321, reason: 'bruised', notifyUrl });
    const edited = await paidTrade(100);
    const date = chinaDate(Date.now());
    await fetch(`${sandbox.url}/sandbox/bill-edits`, { method: 'POST', body: JSON.stringify({ kind: 'amount', channel: 'wechat', date, payNo: edited, amount_fen: 99 }) });

    const file = await channel.downloadBill(date);
    const text = Buffer.from(file).toString('utf8');
    expect(text.startsWith('交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号')).toBe(true);
    expect(text).toContain('\r\n总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额\r\n`');

    const records = channel.parseBill(file);
    const expected = sandbox.core.billRows('wechat', date).map((r) => ({
      kind: r.kind,
      payNo: r.payNo,
      channelTradeNo: r.tradeNo,
      ...(r.refundNo ? { refundNo: r.refundNo } : {}),
      amount_fen: r.amount_fen,
      at_ms: Math.floor(r.at_ms / 1000) * 1000,
    }));
    expect(records).toEqual(expected);
    expect(records.filter((r) => r.payNo === payNo).map((r) => [r.kind, r.amount_fen])).toEqual([['payment', 4321], ['refund', 321]]);
    expect(records.find((r) => r.payNo === edited)?.amount_fen).toBe(99);
    expect(channel.parseBill(gzipSync(file))).toEqual(records);

    // A file cut short loses its summary and is refused, not read as a shorter day.
    const truncated = text.slice(0, text.indexOf('总交易单数'));
    await rejectsWith(Promise.resolve().then(() => channel.parseBill(Buffer.from(truncated))), 'channel_unavailable');
    const lineLost = text.split('\r\n').filter((_, i) => i !== 1).join('\r\n');
    await rejectsWith(Promise.resolve().then(() => channel.parseBill(Buffer.from(lineLost))), 'channel_unavailable');
    expect(channel.parseBill(await channel.downloadBill('2001-01-01'))).toEqual([]);
  });
});

describe('bill integrity', () => {
  /**
   * A relay that holds the platform key, so it can speak as WeChat: it passes requests on to the
   * sandbox, points download_url at itself (re-signing the answer) and alters the file in transit.
   */
  it('refuses a file that does not match hash_value, and sends no signature to another host', async () => {
    const date = chinaDate(Date.now());
    await paidTrade(777);
    let keepOrigin = false;
    const relay = createServer(async (req, res) => {
      const upstream = await fetch(sandbox.url + req.url, { headers: { authorization: req.headers.authorization ?? '' } });
      if (req.url!.startsWith('/wechat/v3/billdownload/')) {
        const bill = Buffer.from(gunzipSync(Buffer.from(await upstream.arrayBuffer())).toString('utf8').replace('`SUCCESS', '`SUCCESS '));
        res.writeHead(200).end(gzipSync(bill));
        return;
      }
      const answer = (await upstream.json()) as { download_url: string };
      if (!keepOrigin) answer.download_url = answer.download_url.replace(sandbox.url, relayUrl);
      const body = JSON.stringify(answer);
      const ts = String(Math.floor(Date.now() / 1000));
      const signature = createSign('RSA-SHA256').update(`${ts}\nn\n${body}\n`).sign(keys.platform[0]!.privateKeyPem, 'base64');
      res.writeHead(200, { 'wechatpay-timestamp': ts, 'wechatpay-nonce': 'n', 'wechatpay-signature': signature, 'wechatpay-serial': keys.platform[0]!.serial }).end(body);
    });
    await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
    const address = relay.address();
    const relayUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
    try {
      const relayed = wechatChannel({ ...settings, baseUrl: `${relayUrl}/wechat` }, Date.now);
      await expect(relayed.downloadBill(date)).rejects.toThrow(/hash/);
      keepOrigin = true;
      await expect(relayed.downloadBill(date)).rejects.toThrow(/another host/);
    } finally {
      await new Promise((resolve) => relay.close(resolve));
    }
  });
});

describe('settings from the environment', () => {
  it('are absent without WECHATPAY_MCH_ID, read keys inline or from files, and refuse half a configuration', () => {
    expect(wechatSettingsFromEnv({})).toBeUndefined();
    const dir = mkdtempSync(join(tmpdir(), 'wechat-'));
    writeFileSync(join(dir, 'apiclient_key.pem'), keys.merchant.privateKeyPem);
    writeFileSync(join(dir, 'platform_cert.pem'), keys.platform[1]!.publicKeyPem);
    const env = {
      WECHATPAY_MCH_ID: keys.mchId,
      WECHATPAY_APP_ID: keys.appId,
      WECHATPAY_MERCHANT_SERIAL_NO: keys.merchant.serialNo,
      WECHATPAY_MERCHANT_PRIVATE_KEY: join(dir, 'apiclient_key.pem'),
      WECHATPAY_API_V3_KEY: keys.apiV3Key,
      WECHATPAY_PUBLIC_KEY_ID: keys.platform[0]!.serial,
      WECHATPAY_PUBLIC_KEY: keys.platform[0]!.publicKeyPem.replaceAll('\n', '\\n'),
      WECHATPAY_PLATFORM_CERTS: join(dir, 'platform_cert.pem'),
      WECHATPAY_BASE_URL: settings.baseUrl,
    };
    const fromEnv = wechatSettingsFromEnv(env)!;
    expect(fromEnv).toMatchObject({ mchId: keys.mchId, merchantPrivateKeyPem: keys.merchant.privateKeyPem, baseUrl: settings.baseUrl, timeout_ms: 10_000 });
    expect(fromEnv.platformKeys.map((k) => k.serial)).toEqual(keys.platform.map((k) => k.serial));
    expect(fromEnv.selfOperatedSubMchId).toBeUndefined();
    expect(wechatSettingsFromEnv({ ...env, WECHATPAY_SELF_OPERATED_SUB_MCH_ID: ' 1900000109 ' })!.selfOperatedSubMchId).toBe('1900000109');
    expect(fromEnv.platformKeys[0]!.publicKeyPem).toBe(keys.platform[0]!.publicKeyPem);
    expect(() => wechatSettingsFromEnv({ ...env, WECHATPAY_API_V3_KEY: 'short' })).toThrow(/32/);
    expect(() => wechatSettingsFromEnv({ ...env, WECHATPAY_APP_ID: '' })).toThrow(/WECHATPAY_APP_ID/);
    expect(() => wechatSettingsFromEnv({ WECHATPAY_MCH_ID: keys.mchId, WECHATPAY_APP_ID: keys.appId })).toThrow();
    rmSync(dir, { recursive: true });
  });
});

it('the cashier page may not be framed by another site', async () => {
  const payNo = newPayNo();
  await channel.create(order(payNo, 100));
  const page = await fetch(cashierUrl(sandbox.url, 'wechat', payNo));
  expect(page.status).toBe(200);
  expect(page.headers.get('x-frame-options')).toBe('DENY');
  expect(page.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
  expect(page.headers.get('x-content-type-options')).toBe('nosniff');
});

describe('GET /v3/certificates, as official SDKs call it at start-up', () => {
  const fetchCertificates = async (tamper?: (text: string) => string) => {
    // Signed over the path as sent (the sandbox serves WeChat under /wechat).
    const path = '/wechat/v3/certificates';
    const auth = authorization({ mchId: keys.mchId, serialNo: keys.merchant.serialNo, key: createPrivateKey(keys.merchant.privateKeyPem), method: 'GET', pathWithQuery: path, body: '', timestamp_s: Math.floor(Date.now() / 1000) });
    const response = await fetch(`${sandbox.url}${path}`, { headers: { authorization: auth, accept: 'application/json' } });
    const text = await response.text();
    return { status: response.status, headers: response.headers, text: tamper ? tamper(text) : text };
  };

  it('lists each platform certificate sealed with the APIv3 key, in an answer signed by that certificate', async () => {
    const { status, headers, text } = await fetchCertificates();
    expect(status).toBe(200);
    const { data } = JSON.parse(text) as { data: Array<{ serial_no: string; effective_time: string; expire_time: string; encrypt_certificate: { algorithm: string; nonce: string; associated_data: string; ciphertext: string } }> };
    const certified = keys.platform.filter((p) => p.publicKeyPem.includes('BEGIN CERTIFICATE'));
    expect(data.map((d) => d.serial_no)).toEqual(certified.map((p) => p.serial));
    const entry = data[0]!;
    expect(entry.encrypt_certificate).toMatchObject({ algorithm: 'AEAD_AES_256_GCM', associated_data: 'certificate' });
    expect(entry.effective_time).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+08:00$/);
    // What an SDK does: open the certificate with the APIv3 key, then check the answer's signature with it.
    const pem = decryptResource(keys.apiV3Key, entry.encrypt_certificate);
    expect(pem).toBe(certified[0]!.publicKeyPem);
    const certificate = new X509Certificate(pem);
    expect(certificate.serialNumber).toBe(entry.serial_no);
    expect(headers.get('wechatpay-serial')).toBe(entry.serial_no);
    const message = `${headers.get('wechatpay-timestamp')}\n${headers.get('wechatpay-nonce')}\n${text}\n`;
    expect(createVerify('RSA-SHA256').update(message).verify(certificate.publicKey, headers.get('wechatpay-signature')!, 'base64')).toBe(true);
    // A changed answer does not verify.
    const changed = text.replace(entry.serial_no, entry.serial_no.replace(/.$/, (c) => (c === '0' ? '1' : '0')));
    expect(createVerify('RSA-SHA256').update(`${headers.get('wechatpay-timestamp')}\n${headers.get('wechatpay-nonce')}\n${changed}\n`).verify(certificate.publicKey, headers.get('wechatpay-signature')!, 'base64')).toBe(false);
  });

  it('refuses a caller whose Authorization is not the merchant’s', async () => {
    const response = await fetch(`${sandbox.url}/wechat/v3/certificates`, { headers: { accept: 'application/json' } });
    expect(response.status).toBe(401);
    expect(await response.json()).toMatchObject({ code: 'SIGN_ERROR' });
  });
});

/**
 * 合单支付 as the platform (服务商 / 平台收付通): one payment over one sub-order per merchant, each a
 * trade of its own. Invariants: all sub-orders are paid together and learnt from one callback; a
 * sub-order is asked for and closed only through its combined number and refunded only as its own
 * trade under its merchant; a combined number is one payment, never another.
 */
describe('combined payments (合单支付)', () => {
  const MERCHANT_A = '1900000101';
  const MERCHANT_B = '1900000102';
  const signingKey = () => createPrivateKey(keys.merchant.privateKeyPem);

  /** A request signed as the merchant, to see what the sandbox answers to bodies our adapter never sends. */
  async function signedCall(base: string, method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number; body: any }> {
    const url = new URL(`${base}/wechat${path}`);
    const text = body === undefined ? '' : JSON.stringify(body);
    const auth = authorization({ mchId: keys.mchId, serialNo: keys.merchant.serialNo, key: signingKey(), method, pathWithQuery: url.pathname + url.search, body: text, timestamp_s: Math.floor(Date.now() / 1000) });
    const response = await fetch(url, { method, headers: { authorization: auth, 'content-type': 'application/json', accept: 'application/json' }, body: text || undefined });
    const raw = await response.text();
    return { status: response.status, body: raw ? JSON.parse(raw) : undefined };
  }

  function cart(combineNo: string, amounts: readonly number[] = [1200, 3400, 560], method: 'qr' | 'h5' | 'jsapi' | 'app' | 'page' = 'qr') {
    const merchants = [MERCHANT_A, MERCHANT_B, undefined];
    return {
      combineNo,
      subOrders: amounts.map((amount_fen, index) => ({
        payNo: `${combineNo}-${index + 1}`,
        amount_fen,
        subject: `Shop ${index + 1} box`,
        ...(merchants[index % merchants.length] !== undefined ? { subMerchantId: merchants[index % merchants.length] } : {}),
      })),
      expires_at_ms: Date.now() + 15 * 60_000,
      method,
      notifyUrl,
      returnUrl: 'https://shop.example/paid',
      payerId: 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o',
    } as const;
  }

  const sentFor = (combineNo: string, subMerchantId?: string) => ({ requested_at_ms: Date.now() - 3_600_000, combineNo, ...(subMerchantId ? { subMerchantId } : {}) });
  const payCombinedClick = (base: string, combineNo: string) => fetch(`${base}/sandbox/cashier/wechat/${combineNo}/pay`, { method: 'POST' });

  async function paidCombined(amounts?: readonly number[]) {
    const request = cart(newPayNo(), amounts);
    await channel.createCombined(request);
    expect((await payCombinedClick(sandbox.url, request.combineNo)).status).toBe(200);
    return request;
  }

  it('offers up to 50 sub-orders, the platform as combine_mchid and each merchant as sub_mchid', () => {
    expect(channel.maxSubOrders).toBe(MAX_WECHAT_SUB_ORDERS);
    expect(MAX_WECHAT_SUB_ORDERS).toBe(50);
  });

  it('create, one Pay click, one callback carrying every sub-order’s own trade; queries by the combined number', async () => {
    const request = cart(newPayNo());
    const { combineNo, subOrders } = request;
    expect(await channel.createCombined(request)).toEqual({ kind: 'qr_code', codeUrl: cashierUrl(sandbox.url, 'wechat', combineNo) });
    const made = subOrders.map((sub) => sandbox.core.trade('wechat', sub.payNo)!);
    expect(made.map((trade) => [trade.combineNo, trade.subMerchantId, trade.amount_fen])).toEqual([
      [combineNo, MERCHANT_A, 1200],
      [combineNo, MERCHANT_B, 3400],
      // The platform's own goods (自营) go under the platform store's own sub_mchid.
      [combineNo, settings.selfOperatedSubMchId, 560],
    ]);
    expect(await channel.queryCombined(combineNo, subOrders)).toEqual(subOrders.map((sub) => ({ payNo: sub.payNo, state: 'pending', amount_fen: sub.amount_fen })));
    // WeChat does not answer a sub-order through the normal query; with its combined number we do.
    expect(await channel.query(subOrders[0]!.payNo)).toEqual({ payNo: subOrders[0]!.payNo, state: 'not_found' });
    expect(await channel.query(subOrders[0]!.payNo, sentFor(combineNo, MERCHANT_A))).toEqual({ payNo: subOrders[0]!.payNo, state: 'pending', amount_fen: 1200 });

    const before = received.length;
    const clicked = (await (await payCombinedClick(sandbox.url, combineNo)).json()) as { trades: Array<{ payNo: string; tradeNo: string; paid_at_ms: number }> };
    await sandbox.core.untilDelivered();
    const arrived = received.slice(before);
    expect(arrived).toHaveLength(1);
    const expected = clicked.trades.map((trade, index) => ({
      payNo: trade.payNo,
      state: 'succeeded',
      channelTradeNo: trade.tradeNo,
      amount_fen: subOrders[index]!.amount_fen,
      paid_at_ms: Math.floor(trade.paid_at_ms / 1000) * 1000,
    }));
    expect(arrived[0]!.notice).toEqual({ kind: 'combined', combineNo, trades: expected });
    expect(new Set(expected.map((trade) => trade.channelTradeNo)).size).toBe(3);
    expect(arrived[0]!.status).toBe(channel.answer('accepted').status);
    expect(await channel.queryCombined(combineNo, subOrders)).toEqual(expected);
    expect(await channel.query(subOrders[1]!.payNo, sentFor(combineNo, MERCHANT_B))).toEqual(expected[1]);
    expect(await channel.queryCombined(newPayNo(), subOrders)).toEqual(subOrders.map((sub) => ({ payNo: sub.payNo, state: 'not_found' })));
    // A sub-order alone is not payable: the combined payment is paid as a whole.
    expect((await payClick(subOrders[0]!.payNo)).status).toBe(409);
  });

  it('pays with the same actions as single trades on every method WeChat offers', async () => {
    const h5 = await channel.createCombined(cart(newPayNo(), [100, 200], 'h5'));
    expect(h5.kind === 'redirect' && new URL(h5.url).searchParams.get('redirect_url')).toBe('https://shop.example/paid');
    const jsapi = await channel.createCombined(cart(newPayNo(), [100, 200], 'jsapi'));
    if (jsapi.kind !== 'sdk_params') throw new Error(`jsapi gave ${jsapi.kind}`);
    expect(verifies(`${jsapi.params.appId}\n${jsapi.params.timeStamp}\n${jsapi.params.nonceStr}\n${jsapi.params.package}\n`, jsapi.params.paySign!, keys.merchant.publicKeyPem)).toBe(true);
    const app = await channel.createCombined(cart(newPayNo(), [100, 200], 'app'));
    expect(app).toMatchObject({ kind: 'sdk_params', params: { partnerid: keys.mchId, package: 'Sign=WXPay' } });
    await rejectsWith(channel.createCombined(cart(newPayNo(), [100], 'page')), 'pay_method_not_supported');
    await rejectsWith(channel.createCombined({ ...cart(newPayNo(), [100], 'jsapi'), payerId: undefined }), 'invalid_field');
  });

  it('takes MAX_WECHAT_SUB_ORDERS sub-orders and refuses one more, at the adapter and at the sandbox', async () => {
    const full = cart(newPayNo(), Array.from({ length: MAX_WECHAT_SUB_ORDERS }, () => 1));
    expect((await channel.createCombined(full)).kind).toBe('qr_code');
    expect(sandbox.core.tradesOf(sandbox.core.combined('wechat', full.combineNo)!)).toHaveLength(MAX_WECHAT_SUB_ORDERS);
    const over = cart(newPayNo(), Array.from({ length: MAX_WECHAT_SUB_ORDERS + 1 }, () => 1));
    await rejectsWith(channel.createCombined(over), 'invalid_field');
    await rejectsWith(channel.createCombined(cart(newPayNo(), [])), 'invalid_field');
    await rejectsWith(channel.createCombined(cart(newPayNo(), [100, 0])), 'invalid_field');
    const subOrder = (index: number) => ({ mchid: keys.mchId, sub_mchid: MERCHANT_A, out_trade_no: `${over.combineNo}-${index}`, attach: 'a', description: 'd', amount: { total_amount: 1, currency: 'CNY' } });
    const body = (count: number) => ({
      combine_appid: keys.appId,
      combine_mchid: keys.mchId,
      combine_out_trade_no: over.combineNo,
      scene_info: { payer_client_ip: '127.0.0.1' },
      sub_orders: Array.from({ length: count }, (_, index) => subOrder(index)),
      notify_url: notifyUrl,
    });
    expect(await signedCall(sandbox.url, 'POST', '/v3/combine-transactions/native', body(MAX_WECHAT_SUB_ORDERS + 1))).toMatchObject({ status: 400, body: { code: 'PARAM_ERROR' } });
    // Partner mode: no sub-order without its sub_mchid, and the platform cannot be its own participant.
    const { sub_mchid: _omitted, ...withoutSubMchid } = subOrder(0);
    expect(await signedCall(sandbox.url, 'POST', '/v3/combine-transactions/native', { ...body(1), sub_orders: [withoutSubMchid] })).toMatchObject({ status: 400, body: { code: 'PARAM_ERROR' } });
    expect(await signedCall(sandbox.url, 'POST', '/v3/combine-transactions/native', { ...body(1), sub_orders: [{ ...subOrder(0), sub_mchid: keys.mchId }] })).toMatchObject({ status: 400, body: { code: 'INVALID_REQUEST' } });
    expect(sandbox.core.combined('wechat', over.combineNo)).toBeUndefined();
  });

  it('refuses the platform’s own goods when no store sub_mchid is configured, and sends nothing', async () => {
    const { selfOperatedSubMchId: _none, ...unconfigured } = settings;
    const without = wechatChannel(unconfigured, Date.now);
    const request = cart(newPayNo());
    expect(await rejectsWith(without.createCombined(request), 'channel_not_configured')).toMatchObject({ reason: 'self_operated_sub_mchid_missing' });
    expect(sandbox.core.combined('wechat', request.combineNo)).toBeUndefined();
    expect(sandbox.core.trade('wechat', request.subOrders[0]!.payNo)).toBeUndefined();
  });

  it('a repeated create is the same payment; a changed one, or a taken sub-order number, is refused', async () => {
    const request = cart(newPayNo());
    const first = await channel.createCombined(request);
    expect(await channel.createCombined(request)).toEqual(first);
    expect(sandbox.core.tradesOf(sandbox.core.combined('wechat', request.combineNo)!)).toHaveLength(3);
    const changedAmount = { ...request, subOrders: request.subOrders.map((sub, index) => (index === 0 ? { ...sub, amount_fen: sub.amount_fen + 1 } : sub)) };
    expect(await rejectsWith(channel.createCombined(changedAmount), 'channel_refused')).toMatchObject({ code: 'OUT_TRADE_NO_USED' });
    const changedMerchant = { ...request, subOrders: request.subOrders.map((sub, index) => (index === 0 ? { ...sub, subMerchantId: MERCHANT_B } : sub)) };
    expect(await rejectsWith(channel.createCombined(changedMerchant), 'channel_refused')).toMatchObject({ code: 'OUT_TRADE_NO_USED' });
    expect(await rejectsWith(channel.createCombined({ ...request, subOrders: request.subOrders.slice(0, 2) }), 'channel_refused')).toMatchObject({ code: 'OUT_TRADE_NO_USED' });
    expect(sandbox.core.trade('wechat', request.subOrders[0]!.payNo)!.amount_fen).toBe(1200);
    // The same sub-orders with other settlement: "重复下单且结算信息不一致".
    const unshared = {
      combine_appid: keys.appId,
      combine_mchid: keys.mchId,
      combine_out_trade_no: request.combineNo,
      scene_info: { payer_client_ip: '127.0.0.1' },
      sub_orders: request.subOrders.map((sub) => ({
        mchid: keys.mchId,
        sub_mchid: sub.subMerchantId ?? settings.selfOperatedSubMchId,
        out_trade_no: sub.payNo,
        attach: sub.payNo,
        description: sub.subject,
        amount: { total_amount: sub.amount_fen, currency: 'CNY' },
        settle_info: { profit_sharing: false },
      })),
      notify_url: notifyUrl,
    };
    expect(await signedCall(sandbox.url, 'POST', '/v3/combine-transactions/native', unshared)).toMatchObject({ status: 400, body: { code: 'INVALID_REQUEST', message: '重复下单且结算信息不一致' } });
    const shared = { ...unshared, sub_orders: unshared.sub_orders.map((sub) => ({ ...sub, settle_info: { profit_sharing: true } })) };
    expect(await signedCall(sandbox.url, 'POST', '/v3/combine-transactions/native', shared)).toMatchObject({ status: 200, body: { code_url: cashierUrl(sandbox.url, 'wechat', request.combineNo) } });
    // A sub-order number already a trade of its own, or a sub-order of another combined payment.
    const single = newPayNo();
    await channel.create(order(single, 100));
    const taken = cart(newPayNo());
    expect(await rejectsWith(channel.createCombined({ ...taken, subOrders: [{ ...taken.subOrders[0]!, payNo: single }] }), 'channel_refused')).toMatchObject({ code: 'OUT_TRADE_NO_USED' });
    expect(await rejectsWith(channel.createCombined({ ...taken, subOrders: [request.subOrders[0]!] }), 'channel_refused')).toMatchObject({ code: 'OUT_TRADE_NO_USED' });
    expect(sandbox.core.combined('wechat', taken.combineNo)).toBeUndefined();
    // A paid one is not made again.
    const paid = await paidCombined();
    expect(await rejectsWith(channel.createCombined(paid), 'channel_refused')).toMatchObject({ code: 'ORDERPAID' });
  });

  it('close: not within a minute, only with exactly its sub-orders, then closed for good; a paid one is reported', async () => {
    // A second sandbox whose clock can be moved on: the minute passes without waiting for it.
    let ahead_ms = 0;
    const timed = await startSandbox({ modules: [{ module: wechatSandbox, keys }], core: { retryScale: 0.001, now: () => Date.now() + ahead_ms } });
    try {
      const timedChannel = wechatChannel(wechatSandbox.settingsFor(keys, timed.url), Date.now);
      const request = cart(newPayNo());
      const { combineNo, subOrders } = request;
      await timedChannel.createCombined(request);
      const closeBody = (subs: typeof subOrders) => ({ combine_appid: keys.appId, sub_orders: subs.map((sub) => ({ mchid: keys.mchId, out_trade_no: sub.payNo, sub_mchid: sub.subMerchantId ?? settings.selfOperatedSubMchId })) });
      expect(await signedCall(timed.url, 'POST', `/v3/combine-transactions/out-trade-no/${combineNo}/close`, closeBody(subOrders))).toMatchObject({ status: 400, body: { code: 'INVALID_REQUEST' } });
      expect(await timedChannel.closeCombined(combineNo, subOrders)).toBe('too_early');
      // Knowing when it was made, the adapter does not even ask inside the minute.
      expect(await timedChannel.closeCombined(combineNo, subOrders, { requested_at_ms: Date.now() - MIN_COMBINED_AGE_BEFORE_CLOSE_MS + 5_000 })).toBe('too_early');

      ahead_ms = MIN_COMBINED_AGE_BEFORE_CLOSE_MS + 1_000;
      expect(await signedCall(timed.url, 'POST', `/v3/combine-transactions/out-trade-no/${combineNo}/close`, closeBody(subOrders.slice(0, 2)))).toMatchObject({ status: 400, body: { code: 'PARAM_ERROR' } });
      expect(await rejectsWith(timedChannel.closeCombined(combineNo, subOrders.slice(1)), 'channel_refused')).toMatchObject({ code: 'PARAM_ERROR' });
      const otherMerchant = subOrders.map((sub, index) => (index === 0 ? { ...sub, subMerchantId: MERCHANT_B } : sub));
      expect(await rejectsWith(timedChannel.closeCombined(combineNo, otherMerchant), 'channel_refused')).toMatchObject({ code: 'PARAM_ERROR' });
      expect((await timedChannel.queryCombined(combineNo, subOrders)).map((trade) => trade.state)).toEqual(['pending', 'pending', 'pending']);

      expect(await timedChannel.closeCombined(combineNo, [...subOrders].reverse(), { requested_at_ms: Date.now() - 2 * MIN_COMBINED_AGE_BEFORE_CLOSE_MS })).toBe('closed');
      expect((await timedChannel.queryCombined(combineNo, subOrders)).map((trade) => trade.state)).toEqual(['closed', 'closed', 'closed']);
      expect((await payCombinedClick(timed.url, combineNo)).status).toBe(409);
      await rejectsWith(timedChannel.createCombined(request), 'channel_refused');
      expect(await timedChannel.closeCombined(newPayNo(), subOrders)).toBe('not_found');

      const paid = cart(newPayNo());
      await timedChannel.createCombined(paid);
      expect((await payCombinedClick(timed.url, paid.combineNo)).status).toBe(200);
      expect(await timedChannel.closeCombined(paid.combineNo, paid.subOrders)).toBe('already_paid');
      await timed.core.untilDelivered();
    } finally {
      await timed.close();
    }
  });

  it('refunds one sub-order as its own trade under its merchant, touching no other; never by the combined number', async () => {
    const { combineNo, subOrders } = await paidCombined([1000, 2000, 300]);
    const [first, second, own] = subOrders as unknown as [(typeof subOrders)[number], (typeof subOrders)[number], (typeof subOrders)[number]];
    const refund = { payNo: first.payNo, refundNo: `${first.payNo}-R1`, amount_fen: 400, total_fen: 1000, reason: 'one item short', notifyUrl, combineNo, subMerchantId: MERCHANT_A };
    const accepted = await channel.refund(refund);
    expect(accepted).toMatchObject({ payNo: first.payNo, refundNo: refund.refundNo, state: 'processing', amount_fen: 400, channelRefundNo: expect.any(String) });
    expect(await channel.refund(refund)).toMatchObject({ channelRefundNo: accepted.channelRefundNo });
    const refunded = () => subOrders.map((sub) => sandbox.core.refunded_fen(sandbox.core.trade('wechat', sub.payNo)!));
    expect(refunded()).toEqual([400, 0, 0]);
    expect(await channel.queryRefund(first.payNo, refund.refundNo, sentFor(combineNo, MERCHANT_A))).toMatchObject({ state: 'succeeded', amount_fen: 400, channelRefundNo: accepted.channelRefundNo, succeeded_at_ms: expect.any(Number) });
    // Under another merchant, or as a direct merchant's refund, it is not found.
    expect(await channel.queryRefund(first.payNo, refund.refundNo, sentFor(combineNo, MERCHANT_B))).toMatchObject({ state: 'not_found' });
    expect(await channel.queryRefund(first.payNo, refund.refundNo)).toMatchObject({ state: 'not_found' });
    expect(await channel.queryRefund(first.payNo, `${first.payNo}-none`, sentFor(combineNo, MERCHANT_A))).toMatchObject({ state: 'not_found' });

    // The sub-order's amount is its total; the whole payment's is not; another merchant's number finds nothing.
    expect(await rejectsWith(channel.refund({ ...refund, refundNo: `${first.payNo}-R2`, total_fen: 3300 }), 'channel_refused')).toMatchObject({ code: 'PARAM_ERROR' });
    expect(await rejectsWith(channel.refund({ ...refund, refundNo: `${first.payNo}-R3`, subMerchantId: MERCHANT_B }), 'channel_refused')).toMatchObject({ code: 'RESOURCE_NOT_EXISTS' });
    expect(await rejectsWith(channel.refund({ payNo: first.payNo, refundNo: `${first.payNo}-R4`, amount_fen: 1, total_fen: 1000, reason: 'x', notifyUrl }), 'channel_refused')).toMatchObject({ code: 'RESOURCE_NOT_EXISTS' });
    expect(await rejectsWith(channel.refund({ ...refund, payNo: combineNo, refundNo: `${combineNo}-R`, total_fen: 3300 }), 'channel_refused')).toMatchObject({ code: 'RESOURCE_NOT_EXISTS' });
    expect(await rejectsWith(channel.refund({ ...refund, refundNo: `${first.payNo}-R5`, amount_fen: 601 }), 'channel_refused')).toMatchObject({ code: 'NOT_ENOUGH' });
    expect(refunded()).toEqual([400, 0, 0]);

    // The platform's own sub-order, refunded under the platform store's sub_mchid.
    const ownRefund = { payNo: own.payNo, refundNo: `${own.payNo}-R1`, amount_fen: 300, total_fen: 300, reason: 'gone off', notifyUrl, combineNo };
    await channel.refund(ownRefund);
    expect(refunded()).toEqual([400, 0, 300]);
    expect(await channel.queryRefund(own.payNo, ownRefund.refundNo, sentFor(combineNo))).toMatchObject({ state: 'succeeded', amount_fen: 300 });
    expect(second.subMerchantId).toBe(MERCHANT_B);

    await sandbox.core.untilDelivered();
    expect(noticesFor(first.payNo).filter((notice) => notice.kind === 'refund')).toEqual([
      { kind: 'refund', refund: { payNo: first.payNo, refundNo: refund.refundNo, state: 'succeeded', channelRefundNo: accepted.channelRefundNo, amount_fen: 400, succeeded_at_ms: expect.any(Number) } },
    ]);
    // Refunded, the sub-orders still read as paid: refunds are followed on their own.
    expect((await channel.queryCombined(combineNo, subOrders)).map((trade) => trade.state)).toEqual(['succeeded', 'succeeded', 'succeeded']);
  });

  it('a sub-order refund the channel fails is reported failed by the query and the notice', async () => {
    const { combineNo, subOrders } = await paidCombined([500, 600]);
    sandbox.core.setFaults({ failRefund: 1 });
    const refund = { payNo: subOrders[1]!.payNo, refundNo: `${subOrders[1]!.payNo}-F`, amount_fen: 600, total_fen: 600, reason: 'cancelled', notifyUrl, combineNo, subMerchantId: MERCHANT_B };
    expect(await channel.refund(refund)).toMatchObject({ state: 'processing' });
    expect(await channel.queryRefund(refund.payNo, refund.refundNo, sentFor(combineNo, MERCHANT_B))).toMatchObject({ state: 'failed' });
    await sandbox.core.untilDelivered();
    expect(noticesFor(refund.payNo).filter((notice) => notice.kind === 'refund')).toMatchObject([{ refund: { refundNo: refund.refundNo, state: 'failed' } }]);
  });

  describe('fault switches on the one combined callback', () => {
    const combinedNotices = (combineNo: string) => received.filter((r) => r.notice?.kind === 'combined' && r.notice.combineNo === combineNo);

    it('drop: no callback; the query still finds every sub-order paid', async () => {
      sandbox.core.setFaults({ drop: 1 });
      const { combineNo, subOrders } = await paidCombined();
      await sandbox.core.untilDelivered();
      expect(combinedNotices(combineNo)).toHaveLength(0);
      expect((await channel.queryCombined(combineNo, subOrders)).map((trade) => trade.state)).toEqual(['succeeded', 'succeeded', 'succeeded']);
    });

    it('duplicate: the same callback twice, the same event id, the same trades', async () => {
      sandbox.core.setFaults({ duplicate: 1 });
      const { combineNo } = await paidCombined();
      await sandbox.core.untilDelivered();
      const both = combinedNotices(combineNo);
      expect(both).toHaveLength(2);
      expect(both[0]!.notice).toEqual(both[1]!.notice);
      expect(JSON.parse(both[0]!.request.rawBody).id).toBe(JSON.parse(both[1]!.request.rawBody).id);
    });

    it('misSign: the spoiled attempt is rejected, the retry accepted', async () => {
      sandbox.core.setFaults({ misSign: 1 });
      const before = received.length;
      const { combineNo } = await paidCombined();
      await sandbox.core.untilDelivered();
      const attempts = received.slice(before);
      expect(attempts).toHaveLength(2);
      expect(isAppError(attempts[0]!.error, 'notification_rejected')).toBe(true);
      expect(attempts[1]!.notice).toMatchObject({ kind: 'combined', combineNo });
    });

    it('delay and reorder: held callbacks arrive late, once each', async () => {
      sandbox.core.setFaults({ delay_ms: 30 });
      const delayed = await paidCombined();
      await sandbox.core.untilDelivered();
      expect(combinedNotices(delayed.combineNo)).toHaveLength(1);
      sandbox.core.setFaults({ delay_ms: 0, reorder: true });
      const older = await paidCombined();
      const newer = await paidCombined();
      await sandbox.core.untilDelivered();
      expect(combinedNotices(older.combineNo)).toHaveLength(0);
      const before = received.length;
      sandbox.core.setFaults({ reorder: false });
      await sandbox.core.untilDelivered();
      // Both sent at the release (newest first); two concurrent requests may land in either order.
      const released = received.slice(before).map((r) => (r.notice?.kind === 'combined' ? r.notice.combineNo : undefined));
      expect(released.sort()).toEqual([newer.combineNo, older.combineNo].sort());
    });

    it('down: create and query fail as unavailable, and nothing is made', async () => {
      sandbox.core.setFaults({ down: ['wechat'] });
      try {
        const request = cart(newPayNo());
        await rejectsWith(channel.createCombined(request), 'channel_unavailable');
        await rejectsWith(channel.queryCombined(request.combineNo, request.subOrders), 'channel_unavailable');
        expect(sandbox.core.combined('wechat', request.combineNo)).toBeUndefined();
      } finally {
        sandbox.core.setFaults({ down: [] });
      }
    });
  });

  it('the bill lists every sub-order as a trade of its own, and its refund', async () => {
    const { combineNo, subOrders } = await paidCombined([700, 800]);
    await channel.refund({ payNo: subOrders[0]!.payNo, refundNo: `${subOrders[0]!.payNo}-B`, amount_fen: 70, total_fen: 700, reason: 'late', notifyUrl, combineNo, subMerchantId: MERCHANT_A });
    const records = channel.parseBill(await channel.downloadBill(chinaDate(Date.now())));
    const rows = (payNo: string) => records.filter((record) => record.payNo === payNo).map((record) => [record.kind, record.amount_fen, record.channelTradeNo]);
    const tradeNo = (payNo: string) => sandbox.core.trade('wechat', payNo)!.tradeNo;
    expect(rows(subOrders[0]!.payNo)).toEqual([['payment', 700, tradeNo(subOrders[0]!.payNo)], ['refund', 70, tradeNo(subOrders[0]!.payNo)]]);
    expect(rows(subOrders[1]!.payNo)).toEqual([['payment', 800, tradeNo(subOrders[1]!.payNo)]]);
    expect(rows(combineNo)).toEqual([]);
  });
});

/**
 * A merchant's trade alone (a checkout of one merchant), made by the platform in the partner form
 * so its money lands in the merchant's account. Invariant: it is found, closed and refunded only
 * under its merchant, never as the platform's own trade.
 */
describe('a merchant’s trade alone (partner form, /v3/pay/partner/transactions)', () => {
  const MERCHANT = '1900000103';
  const sent = (subMerchantId = MERCHANT) => ({ requested_at_ms: Date.now(), subMerchantId });

  it('is made, paid, notified, asked for and refunded under its sub_mchid', async () => {
    const payNo = newPayNo();
    expect(await channel.create({ ...order(payNo, 2500), subMerchantId: MERCHANT })).toEqual({ kind: 'qr_code', codeUrl: cashierUrl(sandbox.url, 'wechat', payNo) });
    expect(sandbox.core.trade('wechat', payNo)).toMatchObject({ subMerchantId: MERCHANT, combineNo: undefined, extra: { profit_sharing: 'true' } });
    expect(await channel.query(payNo)).toEqual({ payNo, state: 'not_found' });
    expect(await channel.query(payNo, sent('1900000999'))).toEqual({ payNo, state: 'not_found' });
    expect(await channel.query(payNo, sent())).toEqual({ payNo, state: 'pending', amount_fen: 2500 });

    const clicked = (await (await payClick(payNo)).json()) as { tradeNo: string; paid_at_ms: number };
    await sandbox.core.untilDelivered();
    const paid = { payNo, state: 'succeeded', channelTradeNo: clicked.tradeNo, amount_fen: 2500, paid_at_ms: Math.floor(clicked.paid_at_ms / 1000) * 1000 };
    expect(noticesFor(payNo)).toEqual([{ kind: 'trade', trade: paid }]);
    expect(await channel.query(payNo, sent())).toEqual(paid);

    const refund = { payNo, refundNo: `${payNo}-R1`, amount_fen: 500, total_fen: 2500, reason: 'short', notifyUrl, subMerchantId: MERCHANT };
    await rejectsWith(channel.refund({ ...refund, subMerchantId: undefined }), 'channel_refused');
    expect(await channel.refund(refund)).toMatchObject({ state: 'processing', amount_fen: 500 });
    expect(await channel.queryRefund(payNo, refund.refundNo, sent())).toMatchObject({ state: 'succeeded', amount_fen: 500 });
    expect(sandbox.core.refunded_fen(sandbox.core.trade('wechat', payNo)!)).toBe(500);
    expect(await channel.close(payNo, sent())).toBe('already_paid');
  });

  it('is closed naming its merchant; a sub-order is closed only with its combined payment', async () => {
    const payNo = newPayNo();
    const jsapi = await channel.create({ ...order(payNo, 900, 'jsapi'), subMerchantId: MERCHANT });
    expect(jsapi).toMatchObject({ kind: 'sdk_params', params: { appId: keys.appId, package: expect.stringMatching(/^prepay_id=wx/) } });
    expect(sandbox.core.trade('wechat', payNo)!.extra.openid).toBe('oUpF8uMuAJO_M2pxb1Q9zNjWeS6o');
    expect(await channel.close(payNo)).toBe('not_found');
    expect(await channel.close(payNo, sent('1900000999'))).toBe('not_found');
    expect(sandbox.core.trade('wechat', payNo)!.state).toBe('WAIT_BUYER_PAY');
    expect(await channel.close(payNo, sent())).toBe('closed');
    expect(await channel.query(payNo, sent())).toMatchObject({ state: 'closed' });
    expect((await payClick(payNo)).status).toBe(409);
    await rejectsWith(channel.close(`${payNo}-1`, { requested_at_ms: Date.now(), combineNo: payNo }), 'invalid_field');
  });
});
