import { createSign, generateKeyPairSync, createVerify } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { unzipSync } from 'fflate';
import iconv from 'iconv-lite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AlipaySdk } from 'alipay-sdk';
import { ALIPAY_COMBINED_METHODS, alipayChannel, alipaySettingsFromEnv, MAX_MERGE_SUB_ORDERS } from '../../src/payments/channels/alipay.ts';
import {
  chinaDate,
  type ChannelNotice,
  type ChannelTrade,
  type CombinedSubOrder,
  type CreateCombinedRequest,
  type InboundRequest,
  type PayMethod,
  type PaymentChannel,
} from '../../src/payments/channels/types.ts';
import { AppError, InvariantViolation, isAppError } from '../../src/platform/errors.ts';
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

/**
 * 合并支付: one buyer payment over a sub-order per merchant, each a trade of its own at Alipay.
 * Invariants: the sub-orders are paid all together or not at all; each sub-order is notified,
 * queried, closed and refunded under its own out_trade_no, and a refund of one touches no other;
 * a marketplace merchant's sub-order names its smid with a settlement to it (直付通), the
 * platform's own carries none.
 */
describe('Alipay merge pay (合并支付) against the Alipay sandbox', () => {
  const SMID_A = '2088000000000001';
  const SMID_B = '2088000000000002';

  function threeMerchants(combineNo: string): CombinedSubOrder[] {
    return [
      { payNo: `${combineNo}S1`, amount_fen: 1200, subject: '鸡蛋 30枚', subMerchantId: SMID_A },
      { payNo: `${combineNo}S2`, amount_fen: 3599, subject: '大米 5kg', subMerchantId: SMID_B },
      // The platform's own goods (自营): no smid, paid to the platform.
      { payNo: `${combineNo}S3`, amount_fen: 1, subject: '购物袋' },
    ];
  }

  function combinedRequest(combineNo: string, method: PayMethod, subOrders: CombinedSubOrder[] = threeMerchants(combineNo)): CreateCombinedRequest {
    return { combineNo, subOrders, method, expires_at_ms: Date.now() + 15 * 60_000, notifyUrl: `${notifyBase}/notify/alipay?p=${combineNo}`, returnUrl: 'https://shop.example/return' };
  }

  const merged = (combineNo: string) => sandbox.core.tradesOf(sandbox.core.combined('alipay', combineNo)!);
  const clickCombined = (combineNo: string) => fetch(`${sandbox.url}/sandbox/cashier/alipay/${combineNo}/pay`, { method: 'POST' });
  /** The sub-order notices that reached our endpoint for a merge, by sub-order. */
  const subOrderNotices = (combineNo: string) => acceptedFor(combineNo).map(tradeOf);

  /** Opens the H5 link as the buyer's browser does and lands at the merge's cashier. */
  async function openH5(action: Awaited<ReturnType<PaymentChannel['createCombined']>>): Promise<string | null> {
    if (action.kind !== 'redirect') throw new Error(`expected a redirect, got ${action.kind}`);
    return (await fetch(action.url, { redirect: 'manual' })).headers.get('location');
  }

  async function createPaidMerge(): Promise<string> {
    const combineNo = nextPayNo();
    expect(await openH5(await channel.createCombined(combinedRequest(combineNo, 'h5')))).toBe(cashierUrl(sandbox.url, 'alipay', combineNo));
    expect((await clickCombined(combineNo)).status).toBe(200);
    await sandbox.core.untilDelivered();
    return combineNo;
  }

  it('h5: merge.precreate then wap.merge.pay to the cashier; one Pay pays every sub-order, each notified as its own trade', async () => {
    const combineNo = nextPayNo();
    const action = await channel.createCombined(combinedRequest(combineNo, 'h5'));
    const link = new URL(action.kind === 'redirect' ? action.url : '');
    expect(link.searchParams.get('method')).toBe('alipay.trade.wap.merge.pay');
    expect(JSON.parse(link.searchParams.get('biz_content')!)).toEqual({ pre_order_no: expect.stringMatching(/^\d+$/) });
    expect(await openH5(action)).toBe(cashierUrl(sandbox.url, 'alipay', combineNo));

    // Each sub-order is a trade at Alipay, under its merchant: smids for the marketplace merchants, none for 自营.
    const trades = merged(combineNo);
    expect(trades.map((trade) => [trade.payNo, trade.amount_fen, trade.subMerchantId, trade.combineNo, trade.state])).toEqual([
      [`${combineNo}S1`, 1200, SMID_A, combineNo, 'WAIT_BUYER_PAY'],
      [`${combineNo}S2`, 3599, SMID_B, combineNo, 'WAIT_BUYER_PAY'],
      [`${combineNo}S3`, 1, undefined, combineNo, 'WAIT_BUYER_PAY'],
    ]);
    expect(await channel.queryCombined(combineNo, threeMerchants(combineNo))).toEqual(trades.map((trade) => expect.objectContaining({ payNo: trade.payNo, state: 'pending' })));
    // A sub-order is paid only with its merge.
    expect((await click(`${combineNo}S1`)).status).toBe(409);

    expect((await clickCombined(combineNo)).status).toBe(200);
    await sandbox.core.untilDelivered();
    const notices = subOrderNotices(combineNo);
    expect(notices.map((trade) => [trade.payNo, trade.state, trade.amount_fen])).toEqual([
      [`${combineNo}S1`, 'succeeded', 1200],
      [`${combineNo}S2`, 'succeeded', 3599],
      [`${combineNo}S3`, 'succeeded', 1],
    ]);
    expect(notices.map((trade) => trade.channelTradeNo)).toEqual(trades.map((trade) => trade.tradeNo));
    expect(new Set(notices.map((trade) => trade.channelTradeNo)).size).toBe(3);
    // All at the same instant, as one payment.
    expect(new Set(notices.map((trade) => trade.paid_at_ms)).size).toBe(1);

    const queried = await channel.queryCombined(combineNo, threeMerchants(combineNo));
    expect(queried.map((trade) => [trade.payNo, trade.state, trade.amount_fen, trade.channelTradeNo])).toEqual(trades.map((trade) => [trade.payNo, 'succeeded', trade.amount_fen, trade.tradeNo]));
    // A sub-order answers the ordinary query as the trade it is.
    expect(await channel.query(`${combineNo}S2`, { requested_at_ms: Date.now(), combineNo, subMerchantId: SMID_B })).toMatchObject({ state: 'succeeded', amount_fen: 3599 });
  });

  it('app and page: app.merge.pay and page.merge.pay lead to the merge cashier; qr is refused, naming the methods merge pay has', async () => {
    const appNo = nextPayNo();
    const app = await channel.createCombined(combinedRequest(appNo, 'app'));
    const orderStr = app.kind === 'sdk_params' ? app.params.orderStr! : '';
    expect(orderStr).toContain('method=alipay.trade.app.merge.pay');
    expect((await fetch(`${sandbox.url}/alipay/gateway.do?${orderStr}`, { redirect: 'manual' })).headers.get('location')).toBe(cashierUrl(sandbox.url, 'alipay', appNo));
    expect(merged(appNo).map((trade) => trade.method)).toEqual(['QUICK_MSECURITY_PAY', 'QUICK_MSECURITY_PAY', 'QUICK_MSECURITY_PAY']);

    // page.merge.pay carries the sub-orders in the form itself; the merge exists once the browser posts it.
    const pageNo = nextPayNo();
    const page = await channel.createCombined(combinedRequest(pageNo, 'page'));
    const form = parseForm(page.kind === 'form' ? page.html : '');
    expect(form.fields.method ?? new URL(form.action).searchParams.get('method')).toBe('alipay.trade.page.merge.pay');
    const biz = JSON.parse(form.fields.biz_content!) as { out_merge_no: string; timeout_express: string; order_details: Array<Record<string, unknown>> };
    expect(biz).toMatchObject({ out_merge_no: pageNo, timeout_express: expect.stringMatching(/^1[45]m$/) });
    expect(biz.order_details[0]).toEqual({
      app_id: keys.appId,
      out_trade_no: `${pageNo}S1`,
      product_code: 'FAST_INSTANT_TRADE_PAY',
      total_amount: '12.00',
      subject: '鸡蛋 30枚',
      sub_merchant: { merchant_id: SMID_A },
      settle_info: { settle_detail_infos: [{ trans_in_type: 'defaultSettle', amount: '12.00' }] },
    });
    expect(biz.order_details[2]).toEqual({ app_id: keys.appId, out_trade_no: `${pageNo}S3`, product_code: 'FAST_INSTANT_TRADE_PAY', total_amount: '0.01', subject: '购物袋' });
    expect(sandbox.core.combined('alipay', pageNo)).toBeUndefined();
    const opened = await fetch(form.action, { method: 'POST', body: new URLSearchParams(form.fields), redirect: 'manual' });
    expect(opened.headers.get('location')).toBe(cashierUrl(sandbox.url, 'alipay', pageNo));
    expect(merged(pageNo)).toHaveLength(3);

    // The page merge's expiry is whole minutes; with less than one left it is not opened.
    const late = await rejection(channel.createCombined({ ...combinedRequest(nextPayNo(), 'page'), expires_at_ms: Date.now() + 50_000 }));
    expect(late.code).toBe('order_not_payable');

    expect(ALIPAY_COMBINED_METHODS).toEqual(['page', 'h5', 'app']);
    for (const method of ['qr', 'jsapi'] as const) {
      const refused = await rejection(channel.createCombined(combinedRequest(nextPayNo(), method)));
      expect(refused.code, method).toBe('pay_method_not_supported');
      expect(refused.details).toMatchObject({ channel: 'alipay', method, combinedMethods: ['page', 'h5', 'app'] });
    }
  });

  it('the same merge again is the same merge; a changed one, or a sub-order number used elsewhere, is refused', async () => {
    const combineNo = nextPayNo();
    await channel.createCombined(combinedRequest(combineNo, 'h5'));
    const tradeNos = merged(combineNo).map((trade) => trade.tradeNo);
    expect(await openH5(await channel.createCombined(combinedRequest(combineNo, 'h5')))).toBe(cashierUrl(sandbox.url, 'alipay', combineNo));
    expect(merged(combineNo).map((trade) => trade.tradeNo)).toEqual(tradeNos);

    const changes: Array<[string, CombinedSubOrder[]]> = [
      ['an amount', threeMerchants(combineNo).map((subOrder, index) => (index === 1 ? { ...subOrder, amount_fen: 3600 } : subOrder))],
      ['a merchant', threeMerchants(combineNo).map((subOrder, index) => (index === 2 ? { ...subOrder, subMerchantId: SMID_A } : subOrder))],
      ['a sub-order fewer', threeMerchants(combineNo).slice(0, 2)],
    ];
    for (const [name, subOrders] of changes) {
      const refused = await rejection(channel.createCombined(combinedRequest(combineNo, 'h5', subOrders)));
      expect(refused.code, name).toBe('channel_refused');
      expect(refused.details, name).toMatchObject({ method: 'alipay.trade.merge.precreate', sub_code: 'ACQ.CONTEXT_INCONSISTENT' });
    }
    expect(merged(combineNo).map((trade) => [trade.amount_fen, trade.subMerchantId])).toEqual([[1200, SMID_A], [3599, SMID_B], [1, undefined]]);

    // A sub-order number already a trade of its own, and a sub-order opened as a trade of its own.
    const single = nextPayNo();
    await channel.create(createRequest(single, 'qr', 500));
    const taken = await rejection(channel.createCombined(combinedRequest(nextPayNo(), 'h5', [{ payNo: single, amount_fen: 500, subject: 'x', subMerchantId: SMID_A }])));
    expect(taken.details).toMatchObject({ sub_code: 'ACQ.CONTEXT_INCONSISTENT' });
    expect((await rejection(channel.create(createRequest(`${combineNo}S3`, 'qr', 1)))).details).toMatchObject({ sub_code: 'ACQ.CONTEXT_INCONSISTENT' });

    // Once paid, the merge is not made again.
    const paid = await createPaidMerge();
    expect((await rejection(channel.createCombined(combinedRequest(paid, 'h5')))).details).toMatchObject({ sub_code: 'ACQ.TRADE_HAS_SUCCESS' });
  });

  it(`carries ${MAX_MERGE_SUB_ORDERS} sub-orders at most (maxSubOrders): at the cap it pays, past it nothing is sent`, async () => {
    expect(channel.maxSubOrders).toBe(MAX_MERGE_SUB_ORDERS);
    const subOrdersOf = (combineNo: string, count: number) =>
      Array.from({ length: count }, (_, index) => ({ payNo: `${combineNo}S${index}`, amount_fen: 100 + index, subject: `商户${index}`, subMerchantId: `20880000000001${String(index).padStart(2, '0')}` }));
    const atCap = nextPayNo();
    await channel.createCombined(combinedRequest(atCap, 'h5', subOrdersOf(atCap, MAX_MERGE_SUB_ORDERS)));
    expect((await clickCombined(atCap)).status).toBe(200);
    expect(merged(atCap).map((trade) => trade.state)).toEqual(Array(MAX_MERGE_SUB_ORDERS).fill('SUCCESS'));

    const pastCap = nextPayNo();
    await expect(channel.createCombined(combinedRequest(pastCap, 'h5', subOrdersOf(pastCap, MAX_MERGE_SUB_ORDERS + 1)))).rejects.toBeInstanceOf(InvariantViolation);
    await expect(channel.createCombined(combinedRequest(pastCap, 'h5', []))).rejects.toBeInstanceOf(InvariantViolation);
    expect(sandbox.core.combined('alipay', pastCap)).toBeUndefined();
    await sandbox.core.untilDelivered();
  });

  it('close: every sub-order closed, the merge no longer payable, each notified; paid → already_paid; unknown → not_found', async () => {
    const combineNo = nextPayNo();
    const subOrders = threeMerchants(combineNo);
    await channel.createCombined(combinedRequest(combineNo, 'h5'));
    expect(await channel.closeCombined(combineNo, subOrders)).toBe('closed');
    expect(merged(combineNo).map((trade) => trade.state)).toEqual(['CLOSED', 'CLOSED', 'CLOSED']);
    expect((await clickCombined(combineNo)).status).toBe(409);
    expect((await channel.queryCombined(combineNo, subOrders)).map((trade) => trade.state)).toEqual(['closed', 'closed', 'closed']);
    expect(await channel.closeCombined(combineNo, subOrders)).toBe('closed');
    await sandbox.core.untilDelivered();
    expect(subOrderNotices(combineNo).map((trade) => [trade.payNo, trade.state])).toEqual(subOrders.map((subOrder) => [subOrder.payNo, 'closed']));
    // A closed merge is not made payable again.
    expect((await rejection(channel.createCombined(combinedRequest(combineNo, 'h5')))).details).toMatchObject({ sub_code: 'ACQ.TRADE_HAS_CLOSE' });

    const paid = await createPaidMerge();
    expect(await channel.closeCombined(paid, threeMerchants(paid))).toBe('already_paid');
    expect(merged(paid).map((trade) => trade.state)).toEqual(['SUCCESS', 'SUCCESS', 'SUCCESS']);
    const unknown = nextPayNo();
    expect(await channel.closeCombined(unknown, threeMerchants(unknown))).toBe('not_found');
  });

  it('a merge past its time_expire closes as a whole and cannot be paid', async () => {
    const combineNo = nextPayNo();
    await channel.createCombined({ ...combinedRequest(combineNo, 'h5'), expires_at_ms: Date.now() + 1_500 });
    await new Promise((resolve) => setTimeout(resolve, 2_100));
    expect((await channel.query(`${combineNo}S2`)).state).toBe('closed');
    expect(merged(combineNo).map((trade) => trade.state)).toEqual(['CLOSED', 'CLOSED', 'CLOSED']);
    expect((await clickCombined(combineNo)).status).toBe(409);
    await sandbox.core.untilDelivered();
  });

  it('a refund of one sub-order touches only that sub-order, and the bill shows each sub-order as its own rows', async () => {
    const combineNo = await createPaidMerge();
    const [first, second, third] = threeMerchants(combineNo);
    const refundNo = `${second!.payNo}R1`;
    const refund = (amount_fen: number, number = refundNo) =>
      channel.refund({ payNo: second!.payNo, refundNo: number, amount_fen, total_fen: second!.amount_fen, reason: '缺货', notifyUrl: `${notifyBase}/notify/alipay?p=${combineNo}`, combineNo, subMerchantId: SMID_B });
    expect(await refund(599)).toMatchObject({ payNo: second!.payNo, refundNo, state: 'succeeded', amount_fen: 599 });
    expect(await refund(599)).toMatchObject({ state: 'succeeded', amount_fen: 599 });
    // More than the sub-order's own amount is refused, though the merge as a whole holds more.
    expect((await rejection(refund(3001, `${second!.payNo}R2`))).details).toMatchObject({ sub_code: 'ACQ.REFUND_AMT_NOT_EQUAL_TOTAL' });
    expect(merged(combineNo).map((trade) => sandbox.core.refunded_fen(trade))).toEqual([0, 599, 0]);
    expect(await channel.queryRefund(second!.payNo, refundNo)).toMatchObject({ state: 'succeeded', amount_fen: 599 });
    expect((await channel.queryRefund(first!.payNo, refundNo)).state).toBe('not_found');

    await sandbox.core.untilDelivered();
    const notices = subOrderNotices(combineNo);
    expect(notices.map((trade) => [trade.payNo, trade.refunded_fen])).toEqual([
      [first!.payNo, undefined],
      [second!.payNo, undefined],
      [third!.payNo, undefined],
      [second!.payNo, 599],
    ]);
    expect((await channel.queryCombined(combineNo, threeMerchants(combineNo))).map((trade) => [trade.state, trade.refunded_fen])).toEqual([
      ['succeeded', undefined],
      ['succeeded', undefined],
      ['succeeded', undefined],
    ]);

    const bill = channel.parseBill(await channel.downloadBill(chinaDate(Date.now()))).filter((row) => row.payNo.startsWith(combineNo));
    const tradeNos = merged(combineNo).map((trade) => trade.tradeNo);
    expect(bill.map((row) => [row.kind, row.payNo, row.channelTradeNo, row.amount_fen, row.refundNo])).toEqual([
      ['payment', first!.payNo, tradeNos[0], 1200, undefined],
      ['payment', second!.payNo, tradeNos[1], 3599, undefined],
      ['payment', third!.payNo, tradeNos[2], 1, undefined],
      ['refund', second!.payNo, tradeNos[1], 599, refundNo],
    ]);
  });

  it('faults work on sub-order notifications: drop, duplicate, misSign, reorder and delay; an outage makes nothing', async () => {
    // drop: one sub-order's notice is lost; the others arrive and the query finds all three paid.
    await setFaults({ drop: 1 });
    const dropped = await createPaidMerge();
    expect(subOrderNotices(dropped).map((trade) => trade.payNo)).toEqual([`${dropped}S2`, `${dropped}S3`]);
    expect((await channel.queryCombined(dropped, threeMerchants(dropped))).map((trade) => trade.state)).toEqual(['succeeded', 'succeeded', 'succeeded']);

    // duplicate: the first sub-order's notice twice, with the same notify_id, as Alipay repeats one.
    await setFaults({ duplicate: 1 });
    const duplicated = await createPaidMerge();
    expect(subOrderNotices(duplicated).map((trade) => trade.payNo).sort()).toEqual([`${duplicated}S1`, `${duplicated}S1`, `${duplicated}S2`, `${duplicated}S3`]);
    const notifyIds = acceptedFor(duplicated)
      .filter((entry) => tradeOf(entry).payNo === `${duplicated}S1`)
      .map((entry) => new URLSearchParams(entry.request.rawBody).get('notify_id'));
    expect(notifyIds[0]).toBe(notifyIds[1]);

    // misSign: a spoiled attempt is rejected, its retry accepted; every sub-order is taken once.
    await setFaults({ misSign: 1 });
    const misSigned = await createPaidMerge();
    expect(rejectedFor(misSigned)).toHaveLength(1);
    expect(isAppError(rejectedFor(misSigned)[0]!.error, 'notification_rejected')).toBe(true);
    expect(subOrderNotices(misSigned).map((trade) => trade.payNo).sort()).toEqual([`${misSigned}S1`, `${misSigned}S2`, `${misSigned}S3`]);

    // reorder: held, then sent newest first.
    await setFaults({ reorder: true });
    const reordered = await createPaidMerge();
    expect(subOrderNotices(reordered)).toEqual([]);
    await setFaults({ reorder: false });
    await sandbox.core.untilDelivered();
    expect(subOrderNotices(reordered).map((trade) => trade.payNo)).toEqual([`${reordered}S3`, `${reordered}S2`, `${reordered}S1`]);

    // delay: nothing before the delay, everything after it.
    await setFaults({ delay_ms: 300 });
    const delayed = nextPayNo();
    await channel.createCombined(combinedRequest(delayed, 'h5'));
    await clickCombined(delayed);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(subOrderNotices(delayed)).toEqual([]);
    await sandbox.core.untilDelivered();
    expect(subOrderNotices(delayed)).toHaveLength(3);
    await setFaults({ delay_ms: 0 });

    // down: Alipay does not answer; no merge is made.
    await setFaults({ down: ['alipay'] });
    const outage = nextPayNo();
    try {
      expect((await rejection(channel.createCombined(combinedRequest(outage, 'h5')))).code).toBe('channel_unavailable');
      expect((await rejection(channel.queryCombined(outage, threeMerchants(outage)))).code).toBe('channel_unavailable');
    } finally {
      await setFaults({ down: [] });
    }
    expect(sandbox.core.combined('alipay', outage)).toBeUndefined();
  });

  it('the sandbox holds a 直付通 sub-order to Alipay\'s rules: sub_merchant needs settle_info adding up to the amount', async () => {
    // The adapter's requests pass these checks in the tests above; here they are shown to bite.
    const sdk = new AlipaySdk({ appId: keys.appId, privateKey: keys.appPrivateKeyPem, alipayPublicKey: keys.alipayPublicKeyPem, gateway: `${sandbox.url}/alipay/gateway.do`, keyType: 'PKCS8', camelcase: false });
    const detail = { app_id: keys.appId, out_trade_no: `${nextPayNo()}S1`, product_code: 'QUICK_WAP_WAY', total_amount: '12.00', subject: '鸡蛋', sub_merchant: { merchant_id: SMID_A } };
    const precreate = (orderDetail: Record<string, unknown>) => sdk.exec('alipay.trade.merge.precreate', { bizContent: { out_merge_no: nextPayNo(), order_details: [orderDetail] } }, { validateSign: true });
    const cases: Array<[string, Record<string, unknown>]> = [
      ['no settle_info', detail],
      ['settle_info short of the amount', { ...detail, settle_info: { settle_detail_infos: [{ trans_in_type: 'defaultSettle', amount: '11.99' }] } }],
      ['another app', { ...detail, app_id: '2021000000000000', settle_info: { settle_detail_infos: [{ trans_in_type: 'defaultSettle', amount: '12.00' }] } }],
      ['no product_code', { ...detail, product_code: undefined, settle_info: { settle_detail_infos: [{ trans_in_type: 'defaultSettle', amount: '12.00' }] } }],
    ];
    for (const [name, orderDetail] of cases) expect(await precreate(orderDetail), name).toMatchObject({ code: '40004', sub_code: 'ACQ.INVALID_PARAMETER' });
    expect(await precreate({ ...detail, settle_info: { settle_detail_infos: [{ trans_in_type: 'defaultSettle', amount: '12.00' }] } })).toMatchObject({ code: '10000', pre_order_no: expect.any(String) });
  });

  it('直付通 single trade: a trade for one merchant names its smid and settles to it', async () => {
    const payNo = nextPayNo();
    await channel.create({ ...createRequest(payNo, 'qr', 2500), subMerchantId: SMID_A });
    expect(sandbox.core.trade('alipay', payNo)).toMatchObject({ subMerchantId: SMID_A, combineNo: undefined });
    // The same number for another merchant is another trade, refused.
    expect((await rejection(channel.create({ ...createRequest(payNo, 'qr', 2500), subMerchantId: SMID_B }))).details).toMatchObject({ sub_code: 'ACQ.CONTEXT_INCONSISTENT' });
    const page = await channel.create({ ...createRequest(nextPayNo(), 'page', 2500), subMerchantId: SMID_B });
    const biz = JSON.parse(parseForm(page.kind === 'form' ? page.html : '').fields.biz_content!) as Record<string, unknown>;
    expect(biz).toMatchObject({ sub_merchant: { merchant_id: SMID_B }, settle_info: { settle_detail_infos: [{ trans_in_type: 'defaultSettle', amount: '25.00' }] } });
    const own = nextPayNo();
    await channel.create(createRequest(own, 'qr', 2500));
    expect(sandbox.core.trade('alipay', own)!.subMerchantId).toBeUndefined();
  });
});
