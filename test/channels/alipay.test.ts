import { createSign, generateKeyPairSync, createVerify } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { unzipSync } from 'fflate';
import iconv from 'iconv-lite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alipayChannel, alipaySettingsFromEnv } from '../../src/payments/channels/alipay.ts';
import { chinaDate, type ChannelNotice, type ChannelTrade, type InboundRequest, type PayMethod, type PaymentChannel } from '../../src/payments/channels/types.ts';
import { AppError, isAppError } from '../../src/platform/errors.ts';
import { alipaySandbox } from '../../src/tools/sandbox/alipay.ts';
import { cashierUrl } from '../../src/tools/sandbox/module.ts';
import { startSandbox, type SandboxHandle } from '../../src/tools/sandbox/server.ts';

/**
 * The Alipay adapter against the Alipay sandbox, both speaking the v2 gateway protocol
 * through real HTTP. Invariants: money moves only on a verified signal (a forged or
 * mis-signed notification is never taken), each refund number refunds once, and the bill
 * holds exactly the day's payments and refunds.
 */

const keys = alipaySandbox.generateKeys();
const stranger = generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } });

interface Received {
  payNo: string;
  request: InboundRequest;
  notice?: ChannelNotice;
  error?: unknown;
}

let sandbox: SandboxHandle;
let channel: PaymentChannel;
let notifyServer: Server;
let notifyBase = '';
const received: Received[] = [];
let serial = 0;

beforeAll(async () => {
  sandbox = await startSandbox({ modules: [{ module: alipaySandbox, keys }], core: { retryScale: 0.001 } });
  channel = alipayChannel(alipaySandbox.settingsFor(keys, sandbox.url), Date.now);
  // Our notify endpoint: the raw request goes to parseNotification, its verdict back to Alipay.
  notifyServer = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', async () => {
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) headers[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
      const request: InboundRequest = { method: req.method ?? '', url: req.url ?? '', headers, rawBody: body };
      const entry: Received = { payNo: new URL(request.url, 'http://x').searchParams.get('p') ?? '', request };
      received.push(entry);
      let outcome: 'accepted' | 'rejected' = 'accepted';
      try {
        entry.notice = await channel.parseNotification(request);
      } catch (error) {
        entry.error = error;
        outcome = 'rejected';
      }
      const answer = channel.answer(outcome);
      res.writeHead(answer.status, { 'content-type': answer.contentType }).end(answer.body);
    });
  });
  await new Promise<void>((resolve) => notifyServer.listen(0, '127.0.0.1', resolve));
  notifyBase = `http://127.0.0.1:${(notifyServer.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await sandbox?.close();
  await new Promise((resolve) => notifyServer?.close(resolve));
});

const nextPayNo = () => `AP${Date.now()}${String(++serial).padStart(3, '0')}`;

function createRequest(payNo: string, method: PayMethod, amount_fen = 1234, subject = '社区团购 鸡蛋 30枚') {
  return { payNo, amount_fen, subject, expires_at_ms: Date.now() + 15 * 60_000, method, notifyUrl: `${notifyBase}/notify/alipay?p=${payNo}`, returnUrl: 'https://shop.example/return' };
}

async function createPaid(amount_fen = 1000): Promise<string> {
  const payNo = nextPayNo();
  await channel.create(createRequest(payNo, 'qr', amount_fen));
  await click(payNo);
  await sandbox.core.untilDelivered();
  return payNo;
}

function click(payNo: string): Promise<Response> {
  return fetch(`${sandbox.url}/sandbox/cashier/alipay/${payNo}/pay`, { method: 'POST' });
}

async function setFaults(faults: Record<string, unknown>): Promise<void> {
  const response = await fetch(`${sandbox.url}/sandbox/faults`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(faults) });
  expect(response.status).toBe(200);
}

async function rejection(promise: Promise<unknown>): Promise<AppError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof AppError) return error;
    throw error;
  }
  throw new Error('expected an AppError');
}

function tradeOf(entry: Received): ChannelTrade {
  if (entry.notice?.kind !== 'trade') throw new Error(`expected a trade notice, got ${JSON.stringify(entry.notice)}`);
  return entry.notice.trade;
}

const acceptedFor = (payNo: string) => received.filter((r) => r.payNo === payNo && r.notice);
const rejectedFor = (payNo: string) => received.filter((r) => r.payNo === payNo && r.error);

/** Signs a notification the way Alipay does (all fields but sign and sign_type, sorted, raw), with any key. */
function signNotification(fields: Record<string, string>, privateKeyPem: string): string {
  const content = Object.keys(fields)
    .filter((k) => k !== 'sign' && k !== 'sign_type')
    .sort()
    .map((k) => `${k}=${fields[k]}`)
    .join('&');
  const sign = createSign('RSA-SHA256').update(content, 'utf8').sign(privateKeyPem, 'base64');
  return new URLSearchParams({ ...fields, sign }).toString();
}

describe('Alipay adapter against the Alipay sandbox', () => {
  it('1. creates a payment for each method, each leading to the sandbox cashier; other methods are refused', async () => {
    expect(channel.methods).toEqual(['qr', 'page', 'h5', 'app']);

    const qrNo = nextPayNo();
    const qr = await channel.create(createRequest(qrNo, 'qr'));
    expect(qr).toEqual({ kind: 'qr_code', codeUrl: cashierUrl(sandbox.url, 'alipay', qrNo) });
    expect((await fetch(qr.kind === 'qr_code' ? qr.codeUrl : '')).status).toBe(200);

    // h5: a signed GET link to the gateway, which sends the browser to the cashier.
    const h5No = nextPayNo();
    const h5 = await channel.create(createRequest(h5No, 'h5'));
    expect(h5.kind).toBe('redirect');
    const h5Opened = await fetch(h5.kind === 'redirect' ? h5.url : '', { redirect: 'manual' });
    expect(h5Opened.status).toBe(302);
    expect(h5Opened.headers.get('location')).toBe(cashierUrl(sandbox.url, 'alipay', h5No));
    // Requests are stamped in China time whatever the server's time zone.
    const stamped = Date.parse(new URL(h5.kind === 'redirect' ? h5.url : '').searchParams.get('timestamp')!.replace(' ', 'T') + '+08:00');
    expect(Math.abs(stamped - Date.now())).toBeLessThan(5_000);

    // page: an auto-submitting form the browser posts to the gateway.
    const pageNo = nextPayNo();
    const page = await channel.create(createRequest(pageNo, 'page'));
    expect(page.kind).toBe('form');
    const form = parseForm(page.kind === 'form' ? page.html : '');
    const pageOpened = await fetch(form.action, { method: 'POST', body: new URLSearchParams(form.fields), redirect: 'manual' });
    expect(pageOpened.status).toBe(302);
    expect(pageOpened.headers.get('location')).toBe(cashierUrl(sandbox.url, 'alipay', pageNo));

    // The same form with the amount changed in the browser is refused by the gateway's signature check.
    const tampered = { ...form.fields, biz_content: form.fields.biz_content!.replace('"12.34"', '"0.01"') };
    const forged = await fetch(form.action, { method: 'POST', body: new URLSearchParams(tampered), redirect: 'manual' });
    expect(await forged.text()).toContain('isv.invalid-signature');

    // app: the signed order string the Alipay app submits; opened here as the app would.
    const appNo = nextPayNo();
    const app = await channel.create(createRequest(appNo, 'app'));
    expect(app.kind).toBe('sdk_params');
    const orderStr = app.kind === 'sdk_params' ? app.params.orderStr! : '';
    expect(orderStr).toContain('method=alipay.trade.app.pay');
    const appOpened = await fetch(`${sandbox.url}/alipay/gateway.do?${orderStr}`, { redirect: 'manual' });
    expect(appOpened.headers.get('location')).toBe(cashierUrl(sandbox.url, 'alipay', appNo));

    for (const method of ['jsapi'] as const) {
      expect((await rejection(channel.create(createRequest(nextPayNo(), method)))).code).toBe('pay_method_not_supported');
    }
  });

  it('passes the order expiry as time_expire in China time and the amount in yuan', async () => {
    const payNo = nextPayNo();
    const expires_at_ms = Date.now() + 7 * 60_000 + 123;
    await channel.create({ ...createRequest(payNo, 'qr', 1), expires_at_ms });
    const trade = sandbox.core.trade('alipay', payNo)!;
    expect(trade.amount_fen).toBe(1);
    expect(trade.expires_at_ms).toBe(Math.floor(expires_at_ms / 1000) * 1000);
  });

  it('2. query says pending before the Pay click and succeeded after it', async () => {
    const payNo = nextPayNo();
    await channel.create(createRequest(payNo, 'qr', 2999));
    expect(await channel.query(payNo)).toMatchObject({ payNo, state: 'pending', amount_fen: 2999 });
    const paid = (await (await click(payNo)).json()) as { tradeNo: string; paid_at_ms: number };
    const trade = await channel.query(payNo);
    expect(trade).toMatchObject({ payNo, state: 'succeeded', amount_fen: 2999, channelTradeNo: paid.tradeNo });
    // Alipay's send_pay_date is to the second.
    expect(trade.paid_at_ms).toBe(Math.floor(paid.paid_at_ms / 1000) * 1000);
    expect(await channel.query(nextPayNo())).toEqual(expect.objectContaining({ state: 'not_found' }));
    await sandbox.core.untilDelivered();
  });

  it('3. one verified notification per payment; a mis-signed attempt is rejected and its retry accepted', async () => {
    const payNo = await createPaid(1500);
    const notices = acceptedFor(payNo);
    expect(notices).toHaveLength(1);
    expect(notices[0]!.notice).toMatchObject({ kind: 'trade', trade: { payNo, state: 'succeeded', amount_fen: 1500 } });
    expect(tradeOf(notices[0]!).channelTradeNo).toBe(sandbox.core.trade('alipay', payNo)!.tradeNo);
    expect(channel.answer('accepted')).toEqual({ status: 200, contentType: expect.any(String), body: 'success' });
    expect(channel.answer('rejected').body).not.toBe('success');

    await setFaults({ misSign: 1 });
    const misSigned = await createPaid(1600);
    expect(rejectedFor(misSigned)).toHaveLength(1);
    expect(isAppError(rejectedFor(misSigned)[0]!.error, 'notification_rejected')).toBe(true);
    expect(acceptedFor(misSigned)).toHaveLength(1);
    const attempts = sandbox.core.deliveries.filter((d) => d.url.endsWith(`p=${misSigned}`));
    expect(attempts.map((d) => [d.misSigned, d.acknowledged])).toEqual([[true, false], [false, true]]);
  });

  it('3. forged notifications are rejected before anything in them is read', async () => {
    const payNo = await createPaid(1700);
    const genuine = acceptedFor(payNo)[0]!.request;
    const fields = Object.fromEntries(new URLSearchParams(genuine.rawBody));
    const parse = (rawBody: string, method = 'POST') => channel.parseNotification({ ...genuine, method, rawBody });

    // Control: the test's own signing, with Alipay's key, is accepted, so the cases below fail for their reason alone.
    await expect(parse(signNotification(fields, keys.alipayPrivateKeyPem))).resolves.toMatchObject({ kind: 'trade' });

    const forgeries: Array<[string, string, string?]> = [
      ['body tampered after signing', genuine.rawBody.replace(/total_amount=[^&]+/, 'total_amount=0.01')],
      ['signed with another key', signNotification({ ...fields, total_amount: '0.01' }, stranger.privateKey)],
      ['signature missing', new URLSearchParams(Object.entries(fields).filter(([k]) => k !== 'sign')).toString()],
      ['empty signature', genuine.rawBody.replace(/sign=[^&]+/, 'sign=')],
      ['field added after signing', `${genuine.rawBody}&refund_fee=17.00`],
      ['field repeated', `${genuine.rawBody}&trade_status=TRADE_CLOSED`],
      ['genuine signature, another app', signNotification({ ...fields, app_id: '2021000000000000' }, keys.alipayPrivateKeyPem)],
      ['not a POST', genuine.rawBody, 'GET'],
      ['not a form', '{"trade_status":"TRADE_SUCCESS"}'],
    ];
    for (const [name, body, method] of forgeries) {
      const error = await rejection(parse(body, method));
      expect(error.code, name).toBe('notification_rejected');
    }
  });

  it('4. close: unpaid → closed and no longer payable; paid → already_paid; unknown → not_found', async () => {
    const payNo = nextPayNo();
    await channel.create(createRequest(payNo, 'qr'));
    expect(await channel.close(payNo)).toBe('closed');
    expect((await click(payNo)).status).toBe(409);
    expect((await channel.query(payNo)).state).toBe('closed');
    expect(await channel.close(payNo)).toBe('closed');
    await sandbox.core.untilDelivered();
    expect(acceptedFor(payNo).map((r) => r.notice)).toEqual([{ kind: 'trade', trade: expect.objectContaining({ payNo, state: 'closed' }) }]);

    expect(await channel.close(await createPaid())).toBe('already_paid');
    expect(await channel.close(nextPayNo())).toBe('not_found');
  });

  it('5. refunds: partial then the rest, each idempotent, never more than paid; notified as trade notices', async () => {
    const payNo = await createPaid(1000);
    const refund = (refundNo: string, amount_fen: number) =>
      channel.refund({ payNo, refundNo, amount_fen, total_fen: 1000, reason: '缺货', notifyUrl: `${notifyBase}/notify/alipay?p=${payNo}` });

    expect(await refund(`${payNo}R1`, 300)).toMatchObject({ payNo, refundNo: `${payNo}R1`, state: 'succeeded', amount_fen: 300 });
    // The same refund number again: the same refund, no money moved a second time.
    expect(await refund(`${payNo}R1`, 300)).toMatchObject({ refundNo: `${payNo}R1`, state: 'succeeded', amount_fen: 300 });
    expect(sandbox.core.refunded_fen(sandbox.core.trade('alipay', payNo)!)).toBe(300);
    expect((await rejection(refund(`${payNo}R2`, 701))).code).toBe('channel_refused');
    const refused = await rejection(refund(`${payNo}R2`, 701));
    expect(refused.details).toMatchObject({ code: '40004', sub_code: 'ACQ.REFUND_AMT_NOT_EQUAL_TOTAL' });
    expect(await refund(`${payNo}R2`, 700)).toMatchObject({ state: 'succeeded', amount_fen: 700 });
    expect((await rejection(refund(`${payNo}R3`, 1))).code).toBe('channel_refused');
    expect(sandbox.core.refunded_fen(sandbox.core.trade('alipay', payNo)!)).toBe(1000);

    const queried = await channel.queryRefund(payNo, `${payNo}R1`);
    expect(queried).toMatchObject({ state: 'succeeded', amount_fen: 300 });
    expect(queried.succeeded_at_ms).toBeGreaterThan(Date.now() - 60_000);
    expect((await channel.queryRefund(payNo, `${payNo}R9`)).state).toBe('not_found');
    expect((await channel.queryRefund(nextPayNo(), 'R1')).state).toBe('not_found');
    // A fully refunded trade is TRADE_CLOSED at Alipay but was paid: still succeeded.
    expect(await channel.query(payNo)).toMatchObject({ state: 'succeeded', refunded_fen: 1000 });

    await sandbox.core.untilDelivered();
    const trades = acceptedFor(payNo).map(tradeOf);
    expect(trades.map((t) => [t.state, t.refunded_fen])).toEqual([['succeeded', undefined], ['succeeded', 300], ['succeeded', 1000]]);
    const statuses = acceptedFor(payNo).map((r) => new URLSearchParams(r.request.rawBody).get('trade_status'));
    expect(statuses).toEqual(['TRADE_SUCCESS', 'TRADE_SUCCESS', 'TRADE_CLOSED']);
  });

  it('5. a refund the channel fails comes back failed; a finished trade is no longer refundable', async () => {
    const payNo = await createPaid(500);
    await setFaults({ failRefund: 1 });
    const failed = await channel.refund({ payNo, refundNo: `${payNo}F`, amount_fen: 200, total_fen: 500, reason: 'test', notifyUrl: `${notifyBase}/n` });
    expect(failed).toMatchObject({ state: 'failed', failure: expect.stringContaining('ACQ.SELLER_BALANCE_NOT_ENOUGH') });
    expect((await channel.queryRefund(payNo, `${payNo}F`)).state).toBe('not_found');

    const finished = await fetch(`${sandbox.url}/sandbox/trades/alipay/${payNo}/finish`, { method: 'POST' });
    expect(finished.status).toBe(200);
    await sandbox.core.untilDelivered();
    expect(acceptedFor(payNo).at(-1)!.notice).toMatchObject({ kind: 'trade', trade: { state: 'succeeded', finished: true } });
    expect(await channel.query(payNo)).toMatchObject({ state: 'succeeded', finished: true });
    const late = await rejection(channel.refund({ payNo, refundNo: `${payNo}L`, amount_fen: 100, total_fen: 500, reason: 'test', notifyUrl: `${notifyBase}/n` }));
    expect(late.details).toMatchObject({ sub_code: 'ACQ.TRADE_HAS_FINISHED' });
  });

  it("6. the day's bill holds exactly the day's payments and refunds", async () => {
    const payNo = nextPayNo();
    // A subject with a comma and quotes, to see the file's cells survive them.
    await channel.create(createRequest(payNo, 'qr', 888, '鸡蛋, 30枚 "散养"'));
    await click(payNo);
    await channel.refund({ payNo, refundNo: `${payNo}R1`, amount_fen: 88, total_fen: 888, reason: 'test', notifyUrl: `${notifyBase}/n` });
    await sandbox.core.untilDelivered();

    const date = chinaDate(Date.now());
    const file = await channel.downloadBill(date);
    const names = Object.keys(unzipSync(file));
    expect(names).toEqual([`${keys.sellerId}_${date.replaceAll('-', '')}_业务明细.csv`, `${keys.sellerId}_${date.replaceAll('-', '')}_业务明细(汇总).csv`]);
    const detail = iconv.decode(Buffer.from(unzipSync(file)[names[0]!]!), 'gbk');
    expect(detail.split('\r\n')[0]).toBe('#支付宝业务明细查询');

    const expected = sandbox.core.billRows('alipay', date).map((r) => ({
      kind: r.kind,
      payNo: r.payNo,
      channelTradeNo: r.tradeNo,
      ...(r.kind === 'refund' ? { refundNo: r.refundNo } : {}),
      amount_fen: r.amount_fen,
      at_ms: Math.floor(r.at_ms / 1000) * 1000,
    }));
    expect(expected.filter((r) => r.payNo === payNo)).toHaveLength(2);
    expect(channel.parseBill(file)).toEqual(expected);

    const ahead = await rejection(channel.downloadBill(chinaDate(Date.now() + 3 * 86_400_000)));
    expect(ahead.details).toMatchObject({ sub_code: 'isp.bill_not_exist' });
  });

  it('7. a request signed with the wrong key is refused as Alipay refuses it; an answer not signed by Alipay is not believed', async () => {
    const settings = alipaySandbox.settingsFor(keys, sandbox.url);
    const wrongKey = alipayChannel({ ...settings, appPrivateKeyPem: stranger.privateKey }, Date.now);
    const refused = await rejection(wrongKey.query(nextPayNo()));
    expect(refused.code).toBe('channel_refused');
    expect(refused.details).toMatchObject({ code: '40002', sub_code: 'isv.invalid-signature' });

    const unsigned = await fetch(`${sandbox.url}/alipay/gateway.do?app_id=${keys.appId}&method=alipay.trade.query&charset=utf-8&sign_type=RSA2&version=1.0&timestamp=2024-01-01%2000%3A00%3A00`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'biz_content=%7B%22out_trade_no%22%3A%22X%22%7D',
    });
    const text = await unsigned.text();
    const body = JSON.parse(text) as { alipay_trade_query_response: Record<string, string>; sign: string };
    expect(body.alipay_trade_query_response).toMatchObject({ code: '40001', sub_code: 'isv.missing-signature' });
    // The answer is signed over its exact _response text, as the SDK checks it.
    const signed = text.slice(text.indexOf(':') + 1, text.lastIndexOf(',"sign"'));
    expect(createVerify('RSA-SHA256').update(signed).verify(keys.alipayPublicKeyPem, body.sign, 'base64')).toBe(true);

    const wrongAlipayKey = alipayChannel({ ...settings, alipayPublicKeyPem: stranger.publicKey }, Date.now);
    expect((await rejection(wrongAlipayKey.query(nextPayNo()))).code).toBe('channel_unavailable');
  });

  it('reads its settings from the environment, keys inline (PEM or bare base64) or from files', () => {
    expect(alipaySettingsFromEnv({})).toBeUndefined();
    const bare = (pem: string) => pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
    const settings = alipaySettingsFromEnv({ ALIPAY_APP_ID: keys.appId, ALIPAY_PRIVATE_KEY: bare(keys.appPrivateKeyPem), ALIPAY_PUBLIC_KEY: keys.alipayPublicKeyPem, ALIPAY_GATEWAY: 'http://x/gateway.do' });
    expect(settings).toMatchObject({ appId: keys.appId, gatewayUrl: 'http://x/gateway.do', appPrivateKeyPem: keys.appPrivateKeyPem, alipayPublicKeyPem: keys.alipayPublicKeyPem });
    expect(() => alipaySettingsFromEnv({ ALIPAY_APP_ID: keys.appId })).toThrow(/ALIPAY_PRIVATE_KEY/);
  });
});

function parseForm(html: string): { action: string; fields: Record<string, string> } {
  const action = /action="([^"]+)"/.exec(html)![1]!.replaceAll('&amp;', '&');
  const fields: Record<string, string> = {};
  for (const m of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"/g)) fields[m[1]!] = m[2]!.replaceAll('&quot;', '"');
  return { action, fields };
}
