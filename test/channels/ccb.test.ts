import { generateKeyPairSync, sign } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ccbChannel, ccbSettingsFromEnv, type CcbSettings } from '../../src/payments/channels/ccb.ts';
import { notificationSignedText } from '../../src/payments/channels/ccb/protocol.ts';
import { CCB_MAX_SUB_ORDERS } from '../../src/payments/channels/ccb/market.ts';
import { chinaDate, type ChannelNotice, type CombinedSubOrder, type PayMethod, type PaymentChannel } from '../../src/payments/channels/types.ts';
import { isAppError } from '../../src/platform/errors.ts';
import { ccbSandbox, type CcbSandboxKeys } from '../../src/tools/sandbox/ccb.ts';
import { cashierUrl } from '../../src/tools/sandbox/module.ts';
import { startSandbox, type SandboxHandle } from '../../src/tools/sandbox/server.ts';

/**
 * The CCB adapter against the sandbox playing CCB, over real HTTP: every payment the bank
 * takes is seen by us exactly once as verified, nothing forged is believed, refunds never
 * return more than was paid, and the day's bill lists exactly the day's money movements.
 */

interface Received {
  payNo: string | undefined;
  url: string;
  rawBody: string;
  notice?: ChannelNotice;
  errorCode?: string;
}

let sandbox: SandboxHandle;
let keys: CcbSandboxKeys;
let settings: CcbSettings;
let ccb: PaymentChannel;
let notifyServer: Server;
let notifyUrl: string;
const received: Received[] = [];
let serial = 0;

beforeAll(async () => {
  keys = ccbSandbox.generateKeys();
  sandbox = await startSandbox({ modules: [{ module: ccbSandbox, keys }], core: { retryScale: 0.001 } });
  settings = ccbSandbox.settingsFor(keys, sandbox.url);
  ccb = ccbChannel(settings, Date.now);
  notifyServer = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (c: Buffer) => chunks.push(c));
    request.on('end', () => {
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(request.headers)) if (typeof v === 'string') headers[k.toLowerCase()] = v;
      const rawBody = Buffer.concat(chunks).toString('utf8');
      // A 惠市宝 notice is JSON about a main order; LongPay's is a form about one order.
      const payNo = rawBody.startsWith('{') ? ((JSON.parse(rawBody) as { Main_Ordr_No?: string }).Main_Ordr_No ?? undefined) : (new URLSearchParams(rawBody).get('ORDERID') ?? undefined);
      const record: Received = { payNo, url: request.url ?? '', rawBody };
      received.push(record);
      ccb.parseNotification({ method: request.method ?? 'POST', url: request.url ?? '/', headers, rawBody }).then(
        (notice) => {
          record.notice = notice;
          reply(ccb.answer('accepted'));
        },
        (error: unknown) => {
          record.errorCode = isAppError(error) ? error.code : String(error);
          reply(ccb.answer('rejected'));
        },
      );
    });
    function reply(answer: { status: number; contentType: string; body: string }) {
      response.writeHead(answer.status, { 'content-type': answer.contentType }).end(answer.body);
    }
  });
  await new Promise<void>((resolve) => notifyServer.listen(0, '127.0.0.1', resolve));
  notifyUrl = `http://127.0.0.1:${(notifyServer.address() as AddressInfo).port}/notify/ccb`;
});

afterAll(async () => {
  await sandbox?.close();
  await new Promise((resolve) => notifyServer?.close(resolve));
});

function newPayNo(): string {
  return `CCB${Date.now()}${String(serial++).padStart(4, '0')}`;
}

function create(payNo: string, method: PayMethod = 'qr', amount_fen = 1234, channel = ccb) {
  return channel.create({ payNo, amount_fen, subject: '社区团购 test', expires_at_ms: Date.now() + 15 * 60_000, method, notifyUrl, returnUrl: 'http://127.0.0.1:9/back' });
}

async function pay(payNo: string): Promise<Response> {
  return fetch(`${sandbox.url}/sandbox/cashier/ccb/${encodeURIComponent(payNo)}/pay`, { method: 'POST' });
}

async function paidTrade(amount_fen = 1000): Promise<string> {
  const payNo = newPayNo();
  await create(payNo, 'qr', amount_fen);
  expect((await pay(payNo)).status).toBe(200);
  return payNo;
}

async function setFaults(faults: Record<string, unknown>): Promise<void> {
  const response = await fetch(`${sandbox.url}/sandbox/faults`, { method: 'POST', body: JSON.stringify(faults) });
  expect(response.status).toBe(200);
}

async function rejection(promise: Promise<unknown>): Promise<{ code: string; details?: Record<string, unknown> }> {
  try {
    await promise;
  } catch (error) {
    if (isAppError(error)) return { code: error.code, details: error.details };
    throw error;
  }
  throw new Error('expected a rejection');
}

function forOrder(payNo: string): Received[] {
  return received.filter((r) => r.payNo === payNo);
}

describe('CCB: create', () => {
  it('qr goes through 530550 and its PAYURL to the sandbox cashier', async () => {
    const payNo = newPayNo();
    expect(await create(payNo, 'qr')).toEqual({ kind: 'qr_code', codeUrl: cashierUrl(sandbox.url, 'ccb', payNo) });
  });

  for (const method of ['page', 'h5'] as const) {
    it(`${method} redirects to the MAC-signed gateway URL, which sends the browser to the cashier`, async () => {
      const payNo = newPayNo();
      const action = await create(payNo, method);
      if (action.kind !== 'redirect') throw new Error(`expected a redirect, got ${action.kind}`);
      expect(action.url.startsWith(`${sandbox.url}/ccb/CCBIS/ccbMain?CCB_IBSVersion=V6&`)).toBe(true);
      expect(new URL(action.url).searchParams.get('PUB')).toBeNull();
      expect(new URL(action.url).searchParams.get('MAC')).toMatch(/^[0-9a-f]{32}$/);
      const landing = await fetch(action.url, { redirect: 'manual' });
      expect(landing.status).toBe(302);
      expect(landing.headers.get('location')).toBe(cashierUrl(sandbox.url, 'ccb', payNo));
      expect((await ccb.query(payNo)).state).toBe('pending');
    });
  }

  it.each(['jsapi', 'app'] as const)('%s is not offered', async (method) => {
    expect((await rejection(create(newPayNo(), method))).code).toBe('pay_method_not_supported');
  });

  it('an order already past its expiry is refused by the bank', async () => {
    const refused = await rejection(ccb.create({ payNo: newPayNo(), amount_fen: 100, subject: 's', expires_at_ms: Date.now() - 60_000, method: 'qr', notifyUrl }));
    expect(refused.code).toBe('channel_refused');
  });
});

describe('CCB: query', () => {
  it('says pending before the Pay click and succeeded after, with amount, bank serial and time', async () => {
    const payNo = newPayNo();
    await create(payNo, 'qr', 2345);
    expect(await ccb.query(payNo)).toMatchObject({ payNo, state: 'pending' });
    expect((await pay(payNo)).status).toBe(200);
    const trade = sandbox.core.trade('ccb', payNo)!;
    const seen = await ccb.query(payNo);
    expect(seen).toMatchObject({ payNo, state: 'succeeded', amount_fen: 2345, channelTradeNo: trade.tradeNo, refunded_fen: 0 });
    expect(Math.abs(seen.paid_at_ms! - trade.paid_at_ms!)).toBeLessThan(1000);
  });

  it('says not_found for a number the bank never saw', async () => {
    expect(await ccb.query(newPayNo())).toEqual({ payNo: expect.any(String), state: 'not_found' });
  });
});

describe('CCB: notifications', () => {
  it('after the Pay click exactly one verified payment notice arrives and is acknowledged', async () => {
    const payNo = await paidTrade(1500);
    await sandbox.core.untilDelivered();
    const got = forOrder(payNo);
    expect(got).toHaveLength(1);
    expect(got[0]!.notice).toEqual({ kind: 'trade', trade: { payNo, state: 'succeeded', amount_fen: 1500 } });
    const attempts = sandbox.core.deliveries.filter((d) => d.channel === 'ccb' && d.url === notifyUrl);
    expect(attempts.at(-1)).toMatchObject({ status: 200, acknowledged: true });
  });

  it('a page payment (TYPE=1, so TYPE/REFERER/CLIENTIP are signed too) is notified and verified', async () => {
    const payNo = newPayNo();
    const action = await create(payNo, 'page', 1800);
    await fetch((action as { url: string }).url, { redirect: 'manual' });
    expect((await pay(payNo)).status).toBe(200);
    await sandbox.core.untilDelivered();
    const got = forOrder(payNo);
    expect(got).toHaveLength(1);
    expect(new URLSearchParams(got[0]!.rawBody).get('TYPE')).toBe('1');
    expect(got[0]!.notice).toEqual({ kind: 'trade', trade: { payNo, state: 'succeeded', amount_fen: 1800 } });
  });

  it('a mis-signed attempt is rejected and the retry after it is accepted', async () => {
    await setFaults({ misSign: 1 });
    const payNo = await paidTrade(1600);
    await sandbox.core.untilDelivered();
    const got = forOrder(payNo);
    expect(got.map((r) => r.errorCode ?? 'accepted')).toEqual(['notification_rejected', 'accepted']);
    expect(got[1]!.notice).toMatchObject({ kind: 'trade', trade: { payNo, state: 'succeeded' } });
    const attempts = sandbox.core.deliveries.filter((d) => d.url === notifyUrl).slice(-2);
    expect(attempts.map((d) => [d.status, d.acknowledged, d.misSigned])).toEqual([[400, false, true], [200, true, false]]);
  });

  it('forged notices are all rejected; the genuine one verifies as a form or as a query string', async () => {
    const payNo = await paidTrade(1700);
    await sandbox.core.untilDelivered();
    const genuine = new URLSearchParams(forOrder(payNo)[0]!.rawBody);
    const parse = (rawBody: string, url = '/notify/ccb') => ccb.parseNotification({ method: 'POST', url, headers: { 'content-type': 'application/x-www-form-urlencoded' }, rawBody });

    await expect(parse(genuine.toString())).resolves.toMatchObject({ kind: 'trade' });
    await expect(ccb.parseNotification({ method: 'GET', url: `/notify/ccb?${genuine}`, headers: {}, rawBody: '' })).resolves.toMatchObject({ kind: 'trade' });

    const tampered = new URLSearchParams(genuine);
    tampered.set('PAYMENT', '9999.00');
    const otherKey = generateKeyPairSync('rsa', { modulusLength: 1024, publicExponent: 17 }).privateKey;
    const foreign = new URLSearchParams(genuine);
    foreign.set('SIGN', sign('md5', Buffer.from(notificationSignedText(foreign)), otherKey).toString('hex'));
    const unsigned = new URLSearchParams(genuine);
    unsigned.delete('SIGN');
    const otherCounter = new URLSearchParams(genuine);
    otherCounter.set('POSID', '000000001');
    otherCounter.set('SIGN', sign('md5', Buffer.from(notificationSignedText(otherCounter)), keys.ccbPrivateKeyPem).toString('hex'));
    const extraField = new URLSearchParams(genuine);
    extraField.set('ERRMSG', 'injected');

    for (const forged of [tampered, foreign, unsigned, otherCounter, extraField]) {
      expect((await rejection(parse(forged.toString()))).code).toBe('notification_rejected');
    }
    expect((await rejection(parse('not a form at all'))).code).toBe('notification_rejected');
  });

  it('answers 200 to stop the bank and anything else to have it resend', () => {
    expect(ccb.answer('accepted').status).toBe(200);
    expect(ccb.answer('rejected').status).not.toBe(200);
  });
});

describe('CCB: close', () => {
  it('closes an unpaid order, after which the cashier cannot take the money', async () => {
    const payNo = newPayNo();
    await create(payNo);
    expect(await ccb.close(payNo)).toBe('closed');
    expect((await pay(payNo)).status).toBe(409);
    expect((await ccb.query(payNo)).state).toBe('closed');
    expect(await ccb.close(payNo)).toBe('closed');
  });

  it('reports a paid order as already paid and an unknown one as not found', async () => {
    expect(await ccb.close(await paidTrade())).toBe('already_paid');
    expect(await ccb.close(newPayNo())).toBe('not_found');
  });
});

describe('CCB: refunds', () => {
  it('partial then the rest, each idempotent by refund number, never more than was paid', async () => {
    const payNo = await paidTrade(1000);
    const request = (refundNo: string, amount_fen: number) => ({ payNo, refundNo, amount_fen, total_fen: 1000, reason: 'test', notifyUrl });
    const first = await ccb.refund(request(`${payNo}R1`, 300));
    expect(first).toMatchObject({ state: 'succeeded', amount_fen: 300 });
    expect(await ccb.refund(request(`${payNo}R1`, 300))).toEqual(first);
    expect(sandbox.core.refunded_fen(sandbox.core.trade('ccb', payNo)!)).toBe(300);
    expect(await ccb.refund(request(`${payNo}R2`, 700))).toMatchObject({ state: 'succeeded', amount_fen: 700 });
    const over = await rejection(ccb.refund(request(`${payNo}R3`, 1)));
    expect(over.code).toBe('channel_refused');
    expect(over.details).toMatchObject({ channel: 'ccb', code: expect.any(String), message: '退款金额超过可退金额' });
    expect(sandbox.core.refunded_fen(sandbox.core.trade('ccb', payNo)!)).toBe(1000);

    expect(await ccb.query(payNo)).toMatchObject({ state: 'succeeded', refunded_fen: 1000 });
    const queried = await ccb.queryRefund(payNo, `${payNo}R1`);
    expect(queried).toMatchObject({ payNo, refundNo: `${payNo}R1`, state: 'succeeded', amount_fen: 300, channelRefundNo: expect.any(String) });
    expect(queried.succeeded_at_ms).toBeGreaterThan(0);
    expect((await ccb.queryRefund(payNo, `${payNo}R9`)).state).toBe('not_found');

    // CCB answers refunds at once and sends no refund notice: only the payment was notified.
    await sandbox.core.untilDelivered();
    expect(forOrder(payNo).map((r) => r.notice?.kind)).toEqual(['trade']);
  });

  it('a refund the bank fails is reported as failed, and stays so when queried', async () => {
    const payNo = await paidTrade(800);
    await setFaults({ failRefund: 1 });
    const failed = await ccb.refund({ payNo, refundNo: `${payNo}F`, amount_fen: 800, total_fen: 800, reason: 'test', notifyUrl });
    expect(failed).toMatchObject({ state: 'failed', failure: expect.any(String) });
    expect((await ccb.queryRefund(payNo, `${payNo}F`)).state).toBe('failed');
    expect(await ccb.query(payNo)).toMatchObject({ state: 'succeeded', refunded_fen: 0 });
  });

  it('a refund of an order the bank never saw is refused', async () => {
    const refused = await rejection(ccb.refund({ payNo: newPayNo(), refundNo: 'X1', amount_fen: 1, total_fen: 1, reason: 'r', notifyUrl }));
    expect(refused.code).toBe('channel_refused');
  });
});

describe('CCB: bill', () => {
  it("downloads the day's file through 5W1005 and 6W0111 and parses exactly the day's payments and refunds", async () => {
    const payNo = await paidTrade(999);
    await ccb.refund({ payNo, refundNo: `${payNo}B`, amount_fen: 333, total_fen: 999, reason: 'bill', notifyUrl });
    const date = chinaDate(Date.now());
    const file = await ccb.downloadBill(date);
    expect([file[0], file[1]]).toEqual([0x50, 0x4b]);
    const key = (r: { kind: string; payNo: string; refundNo?: string }) => `${r.payNo}/${r.kind}/${r.refundNo ?? ''}`;
    const expected = sandbox.core.billRows('ccb', date).map((r) => ({
      kind: r.kind,
      payNo: r.payNo,
      channelTradeNo: r.kind === 'refund' ? r.channelRefundNo! : r.tradeNo,
      ...(r.kind === 'refund' ? { refundNo: r.refundNo } : {}),
      amount_fen: r.amount_fen,
      at_ms: Math.floor(r.at_ms / 1000) * 1000,
    }));
    const parsed = ccb.parseBill(file);
    expect(parsed.sort((a, b) => key(a).localeCompare(key(b)))).toEqual(expected.sort((a, b) => key(a).localeCompare(key(b))));
    expect(parsed.filter((r) => r.payNo === payNo).map((r) => [r.kind, r.amount_fen])).toEqual(expect.arrayContaining([['payment', 999], ['refund', 333]]));
  });

  it('the file share holds only what 6W0111 fetched', async () => {
    expect((await fetch(`${settings.billUrl}/SHOP.${keys.merchantId}.20990101.20990101.x.zip`)).status).toBe(404);
  });
});

describe('CCB: settings from the environment', () => {
  const complete = {
    CCB_MERCHANT_ID: '105000000000001', CCB_POS_ID: '000000001', CCB_BRANCH_ID: '110000000', CCB_PUBLIC_KEY: 'abcd',
    CCB_EBS_URL: 'http://127.0.0.1:12345', CCB_EBS_USER_ID: '001', CCB_EBS_PASSWORD: 'p', CCB_BILL_URL: 'http://127.0.0.1:12346/',
  };
  it('is absent without CCB_MERCHANT_ID, complete with the rest, refused when partial', () => {
    expect(ccbSettingsFromEnv({})).toBeUndefined();
    expect(ccbSettingsFromEnv(complete)).toMatchObject({ merchantId: '105000000000001', billUrl: 'http://127.0.0.1:12346', timeout_ms: 10_000, sendMerchantUrls: false, gatewayUrl: expect.stringContaining('/CCBIS/ccbMain?CCB_IBSVersion=V6') });
    expect(() => ccbSettingsFromEnv({ ...complete, CCB_EBS_URL: undefined })).toThrow(/CCB_EBS_URL/);
  });
});

describe('CCB: requests with the wrong key or credentials', () => {
  it('a MAC made with another public key is refused by the gateway', async () => {
    const otherPublic = generateKeyPairSync('rsa', { modulusLength: 1024, publicExponent: 17 }).publicKey.export({ type: 'spki', format: 'der' }).toString('hex');
    const wrong = ccbChannel({ ...settings, ccbPublicKey: otherPublic }, Date.now);
    const payNo = newPayNo();
    const refused = await rejection(create(payNo, 'qr', 100, wrong));
    expect(refused).toMatchObject({ code: 'channel_refused', details: { code: '0130Z1101001' } });
    const action = await create(payNo, 'page', 100, wrong);
    const landing = await fetch((action as { url: string }).url, { redirect: 'manual' });
    expect(landing.status).toBe(200);
    expect(await landing.text()).toContain('0130Z1101001');
    expect(sandbox.core.trade('ccb', payNo)).toBeUndefined();
  });

  it('the EBS client refuses a wrong operator password', async () => {
    const wrong = ccbChannel({ ...settings, ebsPassword: 'not-it' }, Date.now);
    expect(await rejection(wrong.query(newPayNo()))).toMatchObject({ code: 'channel_refused', details: { code: '0130Z110C054' } });
  });

  it('an unreachable bank is channel_unavailable', async () => {
    const down = ccbChannel({ ...settings, gatewayUrl: 'http://127.0.0.1:1/CCBIS/ccbMain?CCB_IBSVersion=V6', ebsUrl: 'http://127.0.0.1:1/ebs', timeout_ms: 2000 }, Date.now);
    expect((await rejection(create(newPayNo(), 'qr', 100, down))).code).toBe('channel_unavailable');
    expect((await rejection(down.query(newPayNo()))).code).toBe('channel_unavailable');
  });
});

// ---- 合单: 惠市宝's main order with a sub-order per market merchant

function newSubOrders(amounts_fen: readonly number[], merchants: readonly (string | undefined)[] = ['410608608000001', '410608608000002', undefined]): CombinedSubOrder[] {
  const base = newPayNo();
  return amounts_fen.map((amount_fen, index) => {
    const merchant = merchants[index % merchants.length];
    return { payNo: `${base}S${index}`, amount_fen, subject: `shop ${index}`, ...(merchant !== undefined ? { subMerchantId: merchant } : {}) };
  });
}

function createCombined(combineNo: string, subOrders: readonly CombinedSubOrder[], method: PayMethod = 'qr', channel = ccb) {
  return channel.createCombined({ combineNo, subOrders, expires_at_ms: Date.now() + 15 * 60_000, method, notifyUrl, returnUrl: 'http://127.0.0.1:9/back' });
}

async function paidCombined(amounts_fen: readonly number[] = [1000, 2000, 300]): Promise<{ combineNo: string; subOrders: CombinedSubOrder[] }> {
  const combineNo = `${newPayNo()}M`;
  const subOrders = newSubOrders(amounts_fen);
  await createCombined(combineNo, subOrders);
  expect((await pay(combineNo)).status).toBe(200);
  return { combineNo, subOrders };
}

describe('CCB 惠市宝 combined payment', () => {
  it('one Pay click pays every sub-order; one verified combined notice names each with its own Sub_Ordr_Id', async () => {
    const combineNo = `${newPayNo()}M`;
    const subOrders = newSubOrders([1000, 2000, 300]);
    expect(await createCombined(combineNo, subOrders)).toEqual({ kind: 'qr_code', codeUrl: cashierUrl(sandbox.url, 'ccb', combineNo) });
    const trades = await ccb.queryCombined(combineNo, subOrders);
    expect(trades.map((trade) => trade.state)).toEqual(['pending', 'pending', 'pending']);
    // A sub-order is not paid on its own: the main order is.
    expect((await pay(subOrders[0]!.payNo)).status).toBe(409);
    expect((await pay(combineNo)).status).toBe(200);
    await sandbox.core.untilDelivered();
    const got = forOrder(combineNo);
    expect(got).toHaveLength(1);
    expect(got[0]!.errorCode).toBeUndefined();
    const notice = got[0]!.notice!;
    expect(notice.kind).toBe('combined');
    if (notice.kind !== 'combined') return;
    expect(notice.combineNo).toBe(combineNo);
    const subOrderIds = subOrders.map((sub) => sandbox.core.trade('ccb', sub.payNo)!.extra.Sub_Ordr_Id);
    expect(new Set(subOrderIds).size).toBe(3);
    expect(notice.trades).toEqual(subOrders.map((sub, index) => ({ payNo: sub.payNo, state: 'succeeded', channelTradeNo: subOrderIds[index], amount_fen: sub.amount_fen, paid_at_ms: expect.any(Number) })));
    const paid = await ccb.queryCombined(combineNo, subOrders);
    expect(paid).toEqual(subOrders.map((sub, index) => ({ payNo: sub.payNo, state: 'succeeded', channelTradeNo: subOrderIds[index], amount_fen: sub.amount_fen, paid_at_ms: expect.any(Number), refunded_fen: 0 })));
    // Each sub-order is also found on its own, through its main order.
    expect(await ccb.query(subOrders[1]!.payNo, { requested_at_ms: Date.now(), combineNo, subMerchantId: subOrders[1]!.subMerchantId! })).toEqual(paid[1]);
    // The platform's own sub-order went to the market's own merchant number.
    expect(sandbox.core.trade('ccb', subOrders[2]!.payNo)!.subMerchantId).toBe(settings.market!.ownMerchantId);
  });

  it('page and h5 redirect to the cashier of the main order', async () => {
    for (const method of ['page', 'h5'] as const) {
      const combineNo = `${newPayNo()}M`;
      expect(await createCombined(combineNo, newSubOrders([100, 200]), method)).toEqual({ kind: 'redirect', url: cashierUrl(sandbox.url, 'ccb', combineNo) });
    }
  });

  it('a repeat with the same sub-orders is the same order; a changed one is refused and changes nothing', async () => {
    const combineNo = `${newPayNo()}M`;
    const subOrders = newSubOrders([500, 600]);
    const first = await createCombined(combineNo, subOrders);
    expect(await createCombined(combineNo, subOrders)).toEqual(first);
    const changed = subOrders.map((sub, index) => (index === 1 ? { ...sub, amount_fen: 601 } : sub));
    expect(await rejection(createCombined(combineNo, changed))).toMatchObject({ code: 'channel_refused', details: { code: 'HSB0004' } });
    expect(sandbox.core.trade('ccb', subOrders[1]!.payNo)!.amount_fen).toBe(600);
  });

  it(`takes 1 to CCB_MAX_SUB_ORDERS (${CCB_MAX_SUB_ORDERS}) sub-orders and refuses more, none or a repeated number before calling the bank`, async () => {
    expect(ccb.maxSubOrders).toBe(CCB_MAX_SUB_ORDERS);
    const atLimit = newSubOrders(Array.from({ length: CCB_MAX_SUB_ORDERS }, () => 1));
    const combineNo = `${newPayNo()}M`;
    await createCombined(combineNo, atLimit);
    expect((await ccb.queryCombined(combineNo, atLimit)).every((trade) => trade.state === 'pending')).toBe(true);
    const past = newSubOrders(Array.from({ length: CCB_MAX_SUB_ORDERS + 1 }, () => 1));
    const pastNo = `${newPayNo()}M`;
    expect(await rejection(createCombined(pastNo, past))).toMatchObject({ code: 'invalid_field' });
    expect(await rejection(createCombined(`${newPayNo()}M`, []))).toMatchObject({ code: 'invalid_field' });
    const twice = newSubOrders([100, 100]);
    expect(await rejection(createCombined(`${newPayNo()}M`, [twice[0]!, { ...twice[1]!, payNo: twice[0]!.payNo }]))).toMatchObject({ code: 'invalid_field' });
    expect(sandbox.core.combined('ccb', pastNo)).toBeUndefined();
  });

  it('close: an unpaid order closes as a whole and can no longer be paid; a paid one is reported; an unknown one is not found', async () => {
    const combineNo = `${newPayNo()}M`;
    const subOrders = newSubOrders([100, 200]);
    await createCombined(combineNo, subOrders);
    expect(await ccb.closeCombined(combineNo, subOrders)).toBe('closed');
    expect((await ccb.queryCombined(combineNo, subOrders)).map((trade) => trade.state)).toEqual(['closed', 'closed']);
    expect((await pay(combineNo)).status).toBe(409);
    expect(await ccb.closeCombined(combineNo, subOrders)).toBe('closed');
    // No partial close: one sub-order alone is refused before the bank is asked.
    expect((await rejection(ccb.close(subOrders[0]!.payNo, { requested_at_ms: Date.now(), combineNo }))).code).toBe('invalid_request');
    const paid = await paidCombined();
    expect(await ccb.closeCombined(paid.combineNo, paid.subOrders)).toBe('already_paid');
    const unknown = newSubOrders([100]);
    expect(await ccb.closeCombined(`${newPayNo()}M`, unknown)).toBe('not_found');
    expect((await ccb.queryCombined(`${newPayNo()}M`, unknown)).map((trade) => trade.state)).toEqual(['not_found']);
  });

  it('a refund of one sub-order touches only it, by Py_Trn_No and its Sub_Ordr_Id; idempotent; never more than the sub-order', async () => {
    const { combineNo, subOrders } = await paidCombined([1000, 2000, 300]);
    const target = subOrders[1]!;
    const request = { payNo: target.payNo, refundNo: `${target.payNo}R1`, amount_fen: 700, total_fen: target.amount_fen, reason: 'one shop', notifyUrl, combineNo, subMerchantId: target.subMerchantId! };
    const refund = await ccb.refund(request);
    expect(refund).toMatchObject({ payNo: target.payNo, refundNo: request.refundNo, state: 'succeeded', amount_fen: 700, channelRefundNo: expect.any(String), succeeded_at_ms: expect.any(Number) });
    expect(await ccb.refund(request)).toEqual(refund);
    expect(await ccb.queryRefund(target.payNo, request.refundNo, { requested_at_ms: Date.now(), combineNo, subMerchantId: target.subMerchantId! })).toEqual(refund);
    const after = await ccb.queryCombined(combineNo, subOrders);
    expect(after.map((trade) => trade.refunded_fen)).toEqual([0, 700, 0]);
    expect(sandbox.core.trade('ccb', subOrders[0]!.payNo)!.refunds).toHaveLength(0);
    expect(sandbox.core.trade('ccb', subOrders[2]!.payNo)!.refunds).toHaveLength(0);
    // The sub-order's own amount is the limit, not the payment's.
    expect(await rejection(ccb.refund({ ...request, refundNo: `${target.payNo}R2`, amount_fen: 1301 }))).toMatchObject({ code: 'channel_refused', details: { code: 'HSB0006' } });
    // The same refund number on another sub-order is not a second refund.
    expect(await rejection(ccb.refund({ ...request, payNo: subOrders[0]!.payNo, amount_fen: 10 }))).toMatchObject({ code: 'channel_refused', details: { code: 'HSB0004' } });
    expect(await ccb.queryRefund(target.payNo, `${target.payNo}R9`, { requested_at_ms: Date.now(), combineNo })).toEqual({ payNo: target.payNo, refundNo: `${target.payNo}R9`, state: 'not_found' });
  });

  it('a refund the bank fails is reported as failed', async () => {
    const { combineNo, subOrders } = await paidCombined([400, 500]);
    await setFaults({ failRefund: 1 });
    const refund = await ccb.refund({ payNo: subOrders[0]!.payNo, refundNo: `${subOrders[0]!.payNo}F`, amount_fen: 100, total_fen: 400, reason: 'x', notifyUrl, combineNo });
    expect(refund.state).toBe('failed');
  });

  it('faults: a dropped notice is found by query; a duplicate is the same notice twice; a mis-signed one is rejected and its retry accepted', async () => {
    await setFaults({ drop: 1 });
    const dropped = await paidCombined([100, 200]);
    await sandbox.core.untilDelivered();
    expect(forOrder(dropped.combineNo)).toHaveLength(0);
    expect((await ccb.queryCombined(dropped.combineNo, dropped.subOrders)).map((trade) => trade.state)).toEqual(['succeeded', 'succeeded']);

    await setFaults({ duplicate: 1 });
    const doubled = await paidCombined([300, 400]);
    await sandbox.core.untilDelivered();
    const twice = forOrder(doubled.combineNo);
    expect(twice).toHaveLength(2);
    expect(twice[0]!.notice).toEqual(twice[1]!.notice);

    await setFaults({ misSign: 1 });
    const misSigned = await paidCombined([500, 600]);
    await sandbox.core.untilDelivered();
    const attempts = forOrder(misSigned.combineNo);
    expect(attempts.map((attempt) => attempt.errorCode ?? attempt.notice?.kind)).toEqual(['notification_rejected', 'combined']);
  });

  it('faults: delayed and reordered notices still arrive, each verified', async () => {
    await setFaults({ reorder: true });
    const first = await paidCombined([100, 100]);
    const second = await paidCombined([200, 200]);
    expect(forOrder(first.combineNo)).toHaveLength(0);
    await setFaults({ reorder: false, delay_ms: 50 });
    await sandbox.core.untilDelivered();
    await setFaults({ delay_ms: 0 });
    const order = received.filter((record) => record.payNo === first.combineNo || record.payNo === second.combineNo).map((record) => record.payNo);
    expect(order).toEqual([second.combineNo, first.combineNo]);
    expect(forOrder(first.combineNo)[0]!.notice?.kind).toBe('combined');
  });

  it('a forged 惠市宝 notice (changed sub-order amount) is rejected', async () => {
    const { combineNo } = await paidCombined([100, 200]);
    await sandbox.core.untilDelivered();
    const genuine = JSON.parse(forOrder(combineNo)[0]!.rawBody) as { Orderlist: Array<Record<string, string>> };
    genuine.Orderlist[0]!.Txnamt = '99.00';
    const forged = ccb.parseNotification({ method: 'POST', url: '/notify/ccb', headers: {}, rawBody: JSON.stringify(genuine) });
    expect((await rejection(forged)).code).toBe('notification_rejected');
  });

  it('a bank that is down is channel_unavailable for every combined operation', async () => {
    const subOrders = newSubOrders([100]);
    await setFaults({ down: ['ccb'] });
    try {
      expect((await rejection(createCombined(`${newPayNo()}M`, subOrders))).code).toBe('channel_unavailable');
      expect((await rejection(ccb.queryCombined(`${newPayNo()}M`, subOrders))).code).toBe('channel_unavailable');
    } finally {
      await setFaults({ down: [] });
    }
  });

  it("the day's bill lists every sub-order as a row of its own, under its Sub_Ordr_Id", async () => {
    const { subOrders } = await paidCombined([110, 220]);
    const parsed = ccb.parseBill(await ccb.downloadBill(chinaDate(Date.now())));
    for (const sub of subOrders) {
      expect(parsed.filter((row) => row.payNo === sub.payNo)).toEqual([
        { kind: 'payment', payNo: sub.payNo, channelTradeNo: sandbox.core.trade('ccb', sub.payNo)!.extra.Sub_Ordr_Id, amount_fen: sub.amount_fen, at_ms: expect.any(Number) },
      ]);
    }
  });

  it("a single trade for one merchant's order is a 惠市宝 order of one sub-order: notified as a trade, refunded and closed as itself", async () => {
    const payNo = newPayNo();
    const merchant = '410608608000009';
    const action = await ccb.create({ payNo, amount_fen: 900, subject: 'one shop', expires_at_ms: Date.now() + 60_000, method: 'qr', notifyUrl, subMerchantId: merchant });
    expect(action).toEqual({ kind: 'qr_code', codeUrl: cashierUrl(sandbox.url, 'ccb', payNo) });
    const sent = { requested_at_ms: Date.now(), subMerchantId: merchant };
    expect((await ccb.query(payNo, sent)).state).toBe('pending');
    expect((await pay(payNo)).status).toBe(200);
    await sandbox.core.untilDelivered();
    const subOrderId = sandbox.core.trade('ccb', payNo)!.extra.Sub_Ordr_Id;
    expect(forOrder(payNo).map((record) => record.notice)).toEqual([{ kind: 'trade', trade: { payNo, state: 'succeeded', channelTradeNo: subOrderId, amount_fen: 900, paid_at_ms: expect.any(Number) } }]);
    expect(await ccb.close(payNo, sent)).toBe('already_paid');
    const refund = await ccb.refund({ payNo, refundNo: `${payNo}R`, amount_fen: 100, total_fen: 900, reason: 'x', notifyUrl, subMerchantId: merchant });
    expect(refund).toMatchObject({ state: 'succeeded', amount_fen: 100 });
    expect(await ccb.queryRefund(payNo, `${payNo}R`, sent)).toEqual(refund);
    const unpaid = newPayNo();
    await ccb.create({ payNo: unpaid, amount_fen: 100, subject: 'one shop', expires_at_ms: Date.now() + 60_000, method: 'qr', notifyUrl, subMerchantId: merchant });
    expect(await ccb.close(unpaid, sent)).toBe('closed');
    expect((await ccb.query(unpaid, sent)).state).toBe('closed');
  });

  it('without 惠市宝 settings there are no combined payments', async () => {
    const plain = ccbChannel({ ...settings, market: undefined }, Date.now);
    expect(plain.maxSubOrders).toBe(0);
    expect((await rejection(createCombined(`${newPayNo()}M`, newSubOrders([100]), 'qr', plain))).code).toBe('pay_method_not_supported');
  });
});
