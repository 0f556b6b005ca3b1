import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import forge from 'node-forge';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { unionpayChannel, unionpaySettingsFromEnv, type UnionpaySettings } from '../../src/payments/channels/unionpay.ts';
import { formDecode, formEncode, signFields, type AcpFields } from '../../src/payments/channels/unionpay/protocol.ts';
import { UNIONPAY_MAX_SUB_ORDERS } from '../../src/payments/channels/unionpay/split.ts';
import { chinaDate, type ChannelNotice, type CombinedSubOrder, type PaymentChannel } from '../../src/payments/channels/types.ts';
import { isAppError } from '../../src/platform/errors.ts';
import { cashierUrl } from '../../src/tools/sandbox/module.ts';
import { startSandbox, type SandboxHandle } from '../../src/tools/sandbox/server.ts';
import { unionpaySandbox, type UnionpaySandboxKeys } from '../../src/tools/sandbox/unionpay.ts';
import { issueCert, issueMiddle, issueRoot, issueUnionpaySigner, newRsaKey, type IssuedCert } from '../../src/tools/sandbox/unionpay/certs.ts';
import { queryIdOf, signAsUnionpay } from '../../src/tools/sandbox/unionpay/messages.ts';

/**
 * The UnionPay adapter against the sandbox playing UnionPay, over real HTTP: every message
 * is signed and checked as ACP 5.1.0 does. Invariants protected: nothing unverified is
 * believed (forged notifications and answers are refused), money is refunded once per
 * refund number, and the day's file lists exactly the day's payments and refunds.
 */

let skew_ms = 0;
const now = () => Date.now() + skew_ms;

let keys: UnionpaySandboxKeys;
let sandbox: SandboxHandle;
let settings: UnionpaySettings;
let channel: PaymentChannel;
let notifyServer: Server;
let notifyUrl: string;
/** What arrived at our notifyUrl, in order: the raw body and what the adapter made of it. */
const received: Array<{ body: string; notice?: ChannelNotice; error?: unknown }> = [];
let seq = 0;
const newNo = (prefix: string) => `${prefix}${Date.now()}${String(++seq).padStart(4, '0')}`;

beforeAll(async () => {
  keys = unionpaySandbox.generateKeys();
  sandbox = await startSandbox({ modules: [{ module: unionpaySandbox, keys }], core: { retryScale: 0.001, now } });
  settings = unionpaySandbox.settingsFor(keys, sandbox.url);
  channel = unionpayChannel(settings, now);
  notifyServer = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k.toLowerCase(), Array.isArray(v) ? v.join(', ') : v]));
      channel
        .parseNotification({ method: req.method ?? 'POST', url: req.url ?? '/', headers, rawBody: body })
        .then((notice) => ({ notice, answer: channel.answer('accepted') }))
        .catch((error: unknown) => ({ error, answer: channel.answer('rejected') }))
        .then(({ answer, ...outcome }) => {
          received.push({ body, ...outcome });
          res.writeHead(answer.status, { 'content-type': answer.contentType }).end(answer.body);
        });
    });
  });
  await new Promise<void>((resolve) => notifyServer.listen(0, '127.0.0.1', resolve));
  notifyUrl = `http://127.0.0.1:${(notifyServer.address() as AddressInfo).port}/notify/unionpay`;
});

afterAll(async () => {
  await sandbox?.close();
  await new Promise((resolve) => notifyServer?.close(resolve));
});

async function waitFor<T>(find: () => T | undefined, timeout_ms = 5_000): Promise<T> {
  const until = Date.now() + timeout_ms;
  for (;;) {
    const found = find();
    if (found !== undefined) return found;
    if (Date.now() > until) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}

function payClick(payNo: string): Promise<Response> {
  return fetch(`${sandbox.url}/sandbox/cashier/unionpay/${payNo}/pay`, { method: 'POST' });
}

async function newQrTrade(amount_fen = 1000, expires_in_ms = 30 * 60_000): Promise<string> {
  const payNo = newNo('P');
  const action = await channel.create({ payNo, amount_fen, subject: '社区团购 草莓 2 盒', expires_at_ms: now() + expires_in_ms, method: 'qr', notifyUrl });
  expect(action).toEqual({ kind: 'qr_code', codeUrl: cashierUrl(sandbox.url, 'unionpay', payNo) });
  return payNo;
}

async function paidTrade(amount_fen = 1000): Promise<string> {
  const payNo = await newQrTrade(amount_fen);
  expect((await payClick(payNo)).status).toBe(200);
  return payNo;
}

function noticesFor(payNo: string): ChannelNotice[] {
  const about = (notice: ChannelNotice) => (notice.kind === 'trade' ? notice.trade.payNo : notice.kind === 'refund' ? notice.refund.payNo : notice.combineNo);
  return received.flatMap((r) => (r.notice && about(r.notice) === payNo ? [r.notice] : []));
}

async function rejects(promise: Promise<unknown>, code: string): Promise<Record<string, unknown> | undefined> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isAppError(error), `expected AppError ${code}, got ${String(error)}`).toBe(true);
  expect((error as { code: string }).code).toBe(code);
  return (error as { details?: Record<string, unknown> }).details;
}

/** Submits the auto-submitting form as a browser would, without following the redirect. */
async function submitForm(html: string): Promise<{ fields: AcpFields; response: Response }> {
  const action = /<form id="pay_form" action="([^"]+)"/.exec(html)![1]!.replaceAll('&amp;', '&');
  const unescape = (s: string) => s.replace(/&(amp|lt|gt|quot|#39);/g, (_m, e: string) => ({ amp: '&', lt: '<', gt: '>', quot: '"', '#39': "'" })[e]!);
  const fields = Object.fromEntries([...html.matchAll(/<input type="hidden" name="([^"]*)" value="([^"]*)"\/>/g)].map((m) => [unescape(m[1]!), unescape(m[2]!)]));
  const response = await fetch(action, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: formEncode(fields), redirect: 'manual' });
  return { fields, response };
}

describe('unionpay: create', () => {
  it('offers qr, h5 and page; QR 申码 returns a code that opens the cashier', async () => {
    expect([...channel.methods].sort()).toEqual(['h5', 'page', 'qr']);
    const payNo = await newQrTrade();
    const page = await fetch(cashierUrl(sandbox.url, 'unionpay', payNo));
    expect(await page.text()).toContain('草莓');
  });

  it.each([
    ['page', '07'],
    ['h5', '08'],
  ] as const)('%s: a signed frontTransReq form the browser posts, landing on the cashier (channelType %s)', async (method, channelType) => {
    const payNo = newNo('F');
    const expires_at_ms = now() + 15 * 60_000;
    const action = await channel.create({ payNo, amount_fen: 1234, subject: 'eggs', expires_at_ms, method, notifyUrl, returnUrl: 'https://shop.example/return' });
    expect(action.kind).toBe('form');
    const { fields, response } = await submitForm((action as { html: string }).html);
    expect(fields).toMatchObject({ version: '5.1.0', signMethod: '01', certId: keys.merchantCertId, txnType: '01', txnSubType: '01', bizType: '000201', channelType, txnAmt: '1234', currencyCode: '156', orderId: payNo });
    expect(fields.payTimeout).toMatch(/^\d{14}$/);
    expect(response.status).toBe(302);
    expect(response.headers.get('location')).toBe(cashierUrl(sandbox.url, 'unionpay', payNo));
    // payTimeout is China time, to the second, of the order's expiry.
    expect(sandbox.core.trade('unionpay', payNo)!.expires_at_ms).toBe(Math.floor(expires_at_ms / 1000) * 1000);
  });

  it.each(['jsapi', 'app'] as const)('refuses %s', async (method) => {
    await rejects(channel.create({ payNo: newNo('X'), amount_fen: 100, subject: 's', expires_at_ms: now() + 60_000, method, notifyUrl }), 'pay_method_not_supported');
  });
});

describe('unionpay: query and notification', () => {
  it('pending before the Pay click, succeeded after, with one verified notification', async () => {
    const payNo = await newQrTrade(2599);
    expect(await channel.query(payNo)).toEqual({ payNo, state: 'pending' });
    await payClick(payNo);
    const paid = sandbox.core.trade('unionpay', payNo)!;
    const trade = await channel.query(payNo);
    expect(trade).toEqual({ payNo, state: 'succeeded', amount_fen: 2599, channelTradeNo: queryIdOf(paid.tradeNo), paid_at_ms: Math.floor(paid.paid_at_ms! / 1000) * 1000 });
    expect(trade.channelTradeNo).toMatch(/^\d{21}$/);
    const notice = await waitFor(() => noticesFor(payNo)[0]);
    expect(notice).toEqual({ kind: 'trade', trade });
    await sandbox.core.untilDelivered();
    expect(noticesFor(payNo)).toHaveLength(1);
  });

  it('misSign: the first attempt is rejected, the retry on the (scaled) schedule is accepted', async () => {
    const payNo = await newQrTrade();
    sandbox.core.setFaults({ misSign: 1 });
    await payClick(payNo);
    await waitFor(() => noticesFor(payNo)[0]);
    await sandbox.core.untilDelivered();
    const attempts = sandbox.core.deliveries.filter((d) => d.channel === 'unionpay').slice(-2);
    expect(attempts.map((a) => [a.misSigned, a.status, a.acknowledged])).toEqual([
      [true, 400, false],
      [false, 200, true],
    ]);
    const rejected = received.filter((r) => r.error && formDecode(r.body)?.orderId === payNo);
    expect(rejected).toHaveLength(1);
    expect(isAppError(rejected[0]!.error, 'notification_rejected')).toBe(true);
    expect(noticesFor(payNo)).toHaveLength(1);
  });

  it('only HTTP 200 stops the retries: accepted is 200, rejected is not', () => {
    expect(channel.answer('accepted').status).toBe(200);
    expect(channel.answer('rejected').status).not.toBe(200);
  });
});

describe('unionpay: forged notifications are rejected', () => {
  let genuine: AcpFields;
  /** A hierarchy of our own, to make certificates the adapter must not trust. */
  let other: { root: IssuedCert; middle: IssuedCert; signer: IssuedCert };

  beforeAll(async () => {
    const payNo = await paidTrade();
    await waitFor(() => noticesFor(payNo)[0]);
    genuine = formDecode(received.find((r) => r.notice && formDecode(r.body)?.orderId === payNo)!.body)!;
    const root = issueRoot(Date.now());
    const middle = issueMiddle(root, Date.now());
    other = { root, middle, signer: issueUnionpaySigner(middle, Date.now()) };
  });

  const parse = (fields: AcpFields, via = channel) => via.parseNotification({ method: 'POST', url: '/notify', headers: { 'content-type': 'application/x-www-form-urlencoded' }, rawBody: formEncode(fields) });
  const resign = (fields: AcpFields, keyPem: string, certPem = fields.signPubKeyCert!) => signFields({ ...fields, signPubKeyCert: certPem }, keyPem);

  it('accepts the genuine one (control)', async () => {
    expect((await parse(genuine)).kind).toBe('trade');
  });

  it.each<[string, () => AcpFields]>([
    ['body tampered after signing', () => ({ ...genuine, txnAmt: '1' })],
    ['field added after signing', () => ({ ...genuine, reqReserved: 'x' })],
    ['signature missing', () => Object.fromEntries(Object.entries(genuine).filter(([k]) => k !== 'signature'))],
    ['signPubKeyCert missing', () => Object.fromEntries(Object.entries(genuine).filter(([k]) => k !== 'signPubKeyCert'))],
    ['signed by a different key under UnionPay’s certificate', () => resign(genuine, newRsaKey().privatePem)],
    ['signed by the merchant’s own (genuinely chained) certificate', () => resign(genuine, keys.merchantSignKeyPem, keys.merchantSignCertPem)],
    ['a UnionPay-named certificate from another root', () => resign(genuine, other.signer.keyPem, other.signer.certPem)],
    ['signMethod changed', () => ({ ...genuine, signMethod: '11' })],
  ])('%s', async (_name, forge) => {
    await rejects(parse(forge()), 'notification_rejected');
  });

  it('a repeated field makes the form ambiguous', async () => {
    await rejects(channel.parseNotification({ method: 'POST', url: '/', headers: {}, rawBody: `${formEncode(genuine)}&txnAmt=1` }), 'notification_rejected');
  });

  it('certificate checks: right chain and name accepted; wrong CN, expired, or another merchant rejected', async () => {
    const adapter = unionpayChannel({ ...settings, rootCertPem: other.root.certPem, middleCertPem: other.middle.certPem }, now);
    const signed = (signer: IssuedCert, extra: AcpFields = {}) => signAsUnionpay({ ...Object.fromEntries(Object.entries(genuine).filter(([k]) => !['signature', 'signPubKeyCert'].includes(k))), ...extra }, signer);
    expect((await parse(signed(other.signer), adapter)).kind).toBe('trade');
    await rejects(parse(signed(issueUnionpaySigner(other.middle, Date.now(), 'Some Acquirer Ltd')), adapter), 'notification_rejected');
    // The test environment's name is taken only when the CN check is relaxed, as the SDK's ifValidateCNName=false does.
    const testNamed = issueUnionpaySigner(other.middle, Date.now(), '00040000:SIGN');
    await rejects(parse(signed(testNamed), adapter), 'notification_rejected');
    const relaxed = unionpayChannel({ ...settings, rootCertPem: other.root.certPem, middleCertPem: other.middle.certPem, validateCnName: false }, now);
    expect((await parse(signed(testNamed), relaxed)).kind).toBe('trade');
    const expired = issueCert({ subject: [{ name: 'commonName', value: '041@Z1@中国银联股份有限公司@00000001' }], issuer: other.middle, ca: false, now_ms: Date.now(), notBefore_ms: -2 * 86400_000, notAfter_ms: -86400_000 });
    await rejects(parse(signed(expired), adapter), 'notification_rejected');
    await rejects(parse(signed(other.signer, { merId: '898000000000001' }), adapter), 'notification_rejected');
  });
});

describe('unionpay: close', () => {
  it('unpaid → closed, and once its payTimeout passes the cashier refuses the Pay click', async () => {
    const payNo = await newQrTrade(1000, 10 * 60_000);
    expect(await channel.close(payNo)).toBe('closed');
    skew_ms += 11 * 60_000;
    try {
      expect((await payClick(payNo)).status).toBe(409);
      expect((await channel.query(payNo)).state).toBe('not_found');
    } finally {
      skew_ms -= 11 * 60_000;
    }
  });

  it('paid → already_paid; a page form never submitted → not_found', async () => {
    expect(await channel.close(await paidTrade())).toBe('already_paid');
    const payNo = newNo('F');
    await channel.create({ payNo, amount_fen: 100, subject: 's', expires_at_ms: now() + 60_000, method: 'page', notifyUrl });
    expect(await channel.close(payNo)).toBe('not_found');
  });

  it('a pay number this process never sent cannot be asked about (UnionPay needs its txnTime)', async () => {
    const details = await rejects(channel.close(newNo('U')), 'channel_unavailable');
    expect(details).toMatchObject({ reason: 'txn_time_unknown' });
  });
});

describe('unionpay: refund', () => {
  it('partial then the rest, idempotent by refundNo; over the paid amount refused; notifications parsed', async () => {
    const payNo = await paidTrade(1000);
    const { channelTradeNo } = await channel.query(payNo);
    const request = { payNo, channelTradeNo, total_fen: 1000, reason: 'short', notifyUrl };
    const r1 = newNo('R');
    const first = await channel.refund({ ...request, refundNo: r1, amount_fen: 300 });
    expect(first).toMatchObject({ payNo, refundNo: r1, state: 'succeeded', amount_fen: 300 });
    expect(first.channelRefundNo).toMatch(/^\d{21}$/);
    expect(await channel.refund({ ...request, refundNo: r1, amount_fen: 300 })).toEqual(first);
    expect(sandbox.core.refunded_fen(sandbox.core.trade('unionpay', payNo)!)).toBe(300);

    const r2 = newNo('R');
    expect(await channel.refund({ ...request, refundNo: r2, amount_fen: 700 })).toMatchObject({ state: 'succeeded', amount_fen: 700 });
    const details = await rejects(channel.refund({ ...request, refundNo: newNo('R'), amount_fen: 1 }), 'channel_refused');
    expect(details).toMatchObject({ respCode: '30' });
    expect(sandbox.core.refunded_fen(sandbox.core.trade('unionpay', payNo)!)).toBe(1000);

    expect(await channel.queryRefund(payNo, r1)).toEqual(first);
    await waitFor(() => (noticesFor(payNo).filter((n) => n.kind === 'refund').length === 2 ? true : undefined));
    const refundNotices = noticesFor(payNo).filter((n) => n.kind === 'refund');
    expect(refundNotices).toContainEqual({ kind: 'refund', refund: first });
    // Two deliveries run side by side, so their arrival order is not part of the contract.
    expect(refundNotices.map((n) => n.kind === 'refund' && [n.refund.refundNo, n.refund.state, n.refund.amount_fen]).sort((a, b) => Number(a && a[2]) - Number(b && b[2]))).toEqual([
      [r1, 'succeeded', 300],
      [r2, 'succeeded', 700],
    ]);
  });

  it('finds the original queryId itself when not given', async () => {
    const payNo = await paidTrade(500);
    expect(await channel.refund({ payNo, refundNo: newNo('R'), amount_fen: 500, total_fen: 500, reason: 'r', notifyUrl })).toMatchObject({ state: 'succeeded' });
  });

  it('failRefund: the refund is accepted, then reported failed', async () => {
    const payNo = await paidTrade(800);
    sandbox.core.setFaults({ failRefund: 1 });
    const refundNo = newNo('R');
    const refund = await channel.refund({ payNo, refundNo, amount_fen: 800, total_fen: 800, reason: 'r', notifyUrl });
    expect(refund).toMatchObject({ refundNo, state: 'failed' });
    expect(await channel.queryRefund(payNo, refundNo)).toMatchObject({ state: 'failed' });
  });
});

describe('unionpay: bill', () => {
  it("the day's ZM file lists exactly the day's payments and refunds", async () => {
    const payNo = await paidTrade(4321);
    const { channelTradeNo } = await channel.query(payNo);
    const refundNo = newNo('R');
    await channel.refund({ payNo, channelTradeNo, refundNo, amount_fen: 21, total_fen: 4321, reason: 'r', notifyUrl });
    const date = chinaDate(sandbox.core.trade('unionpay', payNo)!.paid_at_ms!);
    const file = await channel.downloadBill(date);
    expect(Buffer.from(file.subarray(0, 2)).toString('latin1')).toBe('PK');
    const records = channel.parseBill(file);
    const expected = sandbox.core.billRows('unionpay', date).map((r) => ({
      kind: r.kind,
      payNo: r.payNo,
      channelTradeNo: queryIdOf(r.tradeNo),
      ...(r.refundNo ? { refundNo: r.refundNo } : {}),
      amount_fen: r.amount_fen,
      at_ms: Math.floor(r.at_ms / 1000) * 1000,
    }));
    expect(records).toEqual(expected);
    expect(records).toContainEqual(expect.objectContaining({ kind: 'payment', payNo, channelTradeNo, amount_fen: 4321 }));
    expect(records).toContainEqual(expect.objectContaining({ kind: 'refund', payNo, channelTradeNo, refundNo, amount_fen: 21 }));

    sandbox.core.editBill({ kind: 'amount', channel: 'unionpay', date, payNo, amount_fen: 4000 });
    const edited = channel.parseBill(await channel.downloadBill(date));
    expect(edited.find((r) => r.kind === 'payment' && r.payNo === payNo)?.amount_fen).toBe(4000);
  });
});

describe('unionpay: signatures on requests and answers', () => {
  it('a request signed with the wrong key is refused with respCode 11', async () => {
    const payNo = await newQrTrade();
    const wrongKey = unionpayChannel({ ...settings, signPrivateKeyPem: newRsaKey().privatePem }, now);
    expect(await rejects(wrongKey.create({ payNo: newNo('W'), amount_fen: 100, subject: 's', expires_at_ms: now() + 60_000, method: 'qr', notifyUrl }), 'channel_refused')).toMatchObject({ respCode: '11' });
    const wrongCertId = unionpayChannel({ ...settings, signCertId: '12345' }, now);
    expect(await rejects(wrongCertId.refund({ payNo, channelTradeNo: '0'.repeat(21), refundNo: newNo('W'), amount_fen: 1, total_fen: 1, reason: 'r', notifyUrl }), 'channel_refused')).toMatchObject({ respCode: '11' });
  });

  it('a browser form signed with the wrong key shows UnionPay’s error page, not the cashier', async () => {
    const wrongKey = unionpayChannel({ ...settings, signPrivateKeyPem: newRsaKey().privatePem }, now);
    const action = await wrongKey.create({ payNo: newNo('W'), amount_fen: 100, subject: 's', expires_at_ms: now() + 60_000, method: 'page', notifyUrl });
    const { response } = await submitForm((action as { html: string }).html);
    expect(response.status).toBe(200);
    expect(await response.text()).toContain('<p id="respCode">11</p>');
  });

  it('an answer UnionPay did not sign is not believed', async () => {
    const root = issueRoot(Date.now());
    const distrusting = unionpayChannel({ ...settings, rootCertPem: root.certPem, middleCertPem: issueMiddle(root, Date.now()).certPem }, now);
    expect(await rejects(distrusting.create({ payNo: newNo('D'), amount_fen: 100, subject: 's', expires_at_ms: now() + 60_000, method: 'qr', notifyUrl }), 'channel_unavailable')).toMatchObject({
      reason: 'certificate does not chain to the UnionPay root',
    });
  });

  it('a gateway that does not answer is channel_unavailable', async () => {
    const nowhere = unionpayChannel({ ...settings, gatewayUrl: 'http://127.0.0.1:9', timeout_ms: 1_000 }, now);
    await rejects(nowhere.create({ payNo: newNo('N'), amount_fen: 100, subject: 's', expires_at_ms: now() + 60_000, method: 'qr', notifyUrl }), 'channel_unavailable');
  });
});

describe('unionpay: settings from the environment', () => {
  it('absent without UNIONPAY_MER_ID; PEM inline or from files; key and certId from the .pfx', () => {
    expect(unionpaySettingsFromEnv({})).toBeUndefined();
    const dir = mkdtempSync(join(tmpdir(), 'unionpay-'));
    writeFileSync(join(dir, 'root.cer'), keys.rootCertPem);
    const p12 = forge.pkcs12.toPkcs12Asn1(forge.pki.privateKeyFromPem(keys.merchantSignKeyPem), [forge.pki.certificateFromPem(keys.merchantSignCertPem)], 'secret', { algorithm: '3des' });
    writeFileSync(join(dir, 'sign.pfx'), Buffer.from(forge.asn1.toDer(p12).getBytes(), 'binary'));
    const env = {
      UNIONPAY_MER_ID: keys.merId,
      UNIONPAY_SIGN_PFX_FILE: join(dir, 'sign.pfx'),
      UNIONPAY_SIGN_PFX_PASSWORD: 'secret',
      UNIONPAY_ROOT_CERT_FILE: join(dir, 'root.cer'),
      UNIONPAY_MIDDLE_CERT: keys.middleCertPem.replaceAll('\n', '\\n'),
      UNIONPAY_GATEWAY: 'https://gateway.test.95516.com/',
    };
    const fromEnv = unionpaySettingsFromEnv(env)!;
    expect(fromEnv).toMatchObject({ merId: keys.merId, signCertId: keys.merchantCertId, gatewayUrl: 'https://gateway.test.95516.com', validateCnName: true, timeout_ms: 10_000 });
    expect(fromEnv.rootCertPem).toBe(keys.rootCertPem);
    expect(fromEnv.middleCertPem).toBe(keys.middleCertPem);
    const probe = signFields({ a: '1' }, fromEnv.signPrivateKeyPem);
    expect(signFields({ a: '1' }, keys.merchantSignKeyPem).signature).toBe(probe.signature);
    expect(() => unionpaySettingsFromEnv({ UNIONPAY_MER_ID: keys.merId })).toThrow(/missing/);
  });
});

// ---- 合单: one consume split over the merchants by accSplitData

const SHOP_A = '898110000000001';
const SHOP_B = '898110000000002';

function newSubOrders(amounts_fen: readonly number[], merchants: readonly (string | undefined)[] = [SHOP_A, SHOP_B, undefined]): CombinedSubOrder[] {
  const base = newNo('S');
  return amounts_fen.map((amount_fen, index) => {
    const merchant = merchants[index];
    return { payNo: `${base}x${index}`, amount_fen, subject: `shop ${index}`, ...(merchant !== undefined ? { subMerchantId: merchant } : {}) };
  });
}

async function newCombined(amounts_fen: readonly number[] = [1000, 2000, 300], method: 'qr' | 'page' = 'qr') {
  const combineNo = newNo('M');
  const subOrders = newSubOrders(amounts_fen);
  const requested_at_ms = now();
  const action = await channel.createCombined({ combineNo, subOrders, expires_at_ms: now() + 15 * 60_000, method, notifyUrl, requested_at_ms });
  return { combineNo, subOrders, action, sent: { requested_at_ms, combineNo } };
}

async function paidCombined(amounts_fen?: readonly number[]) {
  const made = await newCombined(amounts_fen);
  expect((await payClick(made.combineNo)).status).toBe(200);
  return made;
}

describe('unionpay: combined payment (one consume split by accSplitData)', () => {
  it('one Pay click pays every sub-order; one verified combined notice names each with its merchant amount', async () => {
    const { combineNo, subOrders, action, sent } = await newCombined();
    expect(action).toEqual({ kind: 'qr_code', codeUrl: cashierUrl(sandbox.url, 'unionpay', combineNo) });
    expect((await channel.queryCombined(combineNo, subOrders, sent)).map((trade) => trade.state)).toEqual(['pending', 'pending', 'pending']);
    expect((await payClick(subOrders[0]!.payNo)).status).toBe(409);
    expect((await payClick(combineNo)).status).toBe(200);
    const [notice] = await waitFor(() => (noticesFor(combineNo).length > 0 ? noticesFor(combineNo) : undefined));
    const queryId = queryIdOf(sandbox.core.trade('unionpay', subOrders[0]!.payNo)!.tradeNo);
    const expected = subOrders.map((sub) => ({ payNo: sub.payNo, state: 'succeeded', channelTradeNo: queryId, amount_fen: sub.amount_fen, paid_at_ms: expect.any(Number) }));
    expect(notice).toEqual({ kind: 'combined', combineNo, trades: expected });
    expect(await channel.queryCombined(combineNo, subOrders, sent)).toEqual(expected);
    expect(await channel.query(subOrders[1]!.payNo, { ...sent, subMerchantId: SHOP_B })).toEqual(expected[1]);
    // The platform's own part is split to our own merchant code.
    expect(sandbox.core.trade('unionpay', subOrders[2]!.payNo)!.subMerchantId).toBe(keys.merId);
    await sandbox.core.untilDelivered();
    expect(noticesFor(combineNo)).toHaveLength(1);
  });

  it('the page form carries accSplitData and the sub-order numbers in reqReserved', async () => {
    const { combineNo, action } = await newCombined([100, 200], 'page');
    const { fields, response } = await submitForm((action as { html: string }).html);
    expect(JSON.parse(fields.accSplitData!)).toEqual({ accSplitType: '1', accSplitMchts: [{ accSplitMerId: SHOP_A, accSplitAmt: '100' }, { accSplitMerId: SHOP_B, accSplitAmt: '200' }] });
    expect(fields).toMatchObject({ orderId: combineNo, txnAmt: '300', reqReserved: expect.stringMatching(/^combined:/) });
    expect(response.headers.get('location')).toBe(cashierUrl(sandbox.url, 'unionpay', combineNo));
  });

  it(`takes 1 to UNIONPAY_MAX_SUB_ORDERS (${UNIONPAY_MAX_SUB_ORDERS}) sub-orders, one per merchant, and refuses the rest before calling UnionPay`, async () => {
    expect(channel.maxSubOrders).toBe(UNIONPAY_MAX_SUB_ORDERS);
    const merchants = Array.from({ length: UNIONPAY_MAX_SUB_ORDERS + 1 }, (_, index) => `89811000000010${index}`);
    const create = (subOrders: CombinedSubOrder[], combineNo = newNo('M')) => channel.createCombined({ combineNo, subOrders, expires_at_ms: now() + 60_000, method: 'qr', notifyUrl });
    await create(newSubOrders(Array.from({ length: UNIONPAY_MAX_SUB_ORDERS }, () => 1), merchants));
    const pastNo = newNo('M');
    await rejects(create(newSubOrders(Array.from({ length: UNIONPAY_MAX_SUB_ORDERS + 1 }, () => 1), merchants), pastNo), 'invalid_field');
    await rejects(create([]), 'invalid_field');
    await rejects(create(newSubOrders([1, 1], [SHOP_A, SHOP_A])), 'invalid_field');
    await rejects(create(newSubOrders([1], ['not-a-code'])), 'invalid_field');
    expect(sandbox.core.combined('unionpay', pastNo)).toBeUndefined();
  });

  it('a repeat with the same sub-orders is the same payment; a changed one is refused (12) and changes nothing', async () => {
    const combineNo = newNo('M');
    const subOrders = newSubOrders([500, 600]);
    const requested_at_ms = now();
    const request = { combineNo, subOrders, expires_at_ms: now() + 60_000, method: 'qr' as const, notifyUrl, requested_at_ms };
    const first = await channel.createCombined(request);
    expect(await channel.createCombined(request)).toEqual(first);
    const details = await rejects(channel.createCombined({ ...request, subOrders: [subOrders[0]!, { ...subOrders[1]!, amount_fen: 601 }] }), 'channel_refused');
    expect(details).toMatchObject({ respCode: '12' });
    expect(sandbox.core.trade('unionpay', subOrders[1]!.payNo)!.amount_fen).toBe(600);
  });

  it('close: UnionPay has none; an unpaid one is abandoned (closed), a paid one reported, an unknown one not found', async () => {
    const unpaid = await newCombined([100, 200]);
    expect(await channel.closeCombined(unpaid.combineNo, unpaid.subOrders, unpaid.sent)).toBe('closed');
    const paid = await paidCombined([100, 200]);
    expect(await channel.closeCombined(paid.combineNo, paid.subOrders, paid.sent)).toBe('already_paid');
    const unknown = newSubOrders([100]);
    expect(await channel.closeCombined(newNo('M'), unknown, { requested_at_ms: now() })).toBe('not_found');
  });

  it("a refund of one sub-order gives back only its merchant's split, idempotently; more than the sub-order is refused", async () => {
    const { combineNo, subOrders, sent } = await paidCombined([1000, 2000, 300]);
    const target = subOrders[1]!;
    const refundNo = newNo('R');
    const request = { payNo: target.payNo, refundNo, amount_fen: 700, total_fen: target.amount_fen, reason: 'one shop', notifyUrl, requested_at_ms: now(), combineNo, subMerchantId: SHOP_B };
    const refund = await channel.refund(request);
    expect(refund).toMatchObject({ payNo: target.payNo, refundNo, state: 'succeeded', amount_fen: 700 });
    expect((await channel.refund(request)).state).toBe('succeeded');
    expect(await channel.queryRefund(target.payNo, refundNo, { requested_at_ms: request.requested_at_ms, combineNo })).toMatchObject({ state: 'succeeded', amount_fen: 700 });
    expect(subOrders.map((sub) => sandbox.core.refunded_fen(sandbox.core.trade('unionpay', sub.payNo)!))).toEqual([0, 700, 0]);
    const refundNotice = await waitFor(() => noticesFor(target.payNo).find((notice) => notice.kind === 'refund'));
    expect(refundNotice).toMatchObject({ kind: 'refund', refund: { payNo: target.payNo, refundNo, state: 'succeeded', amount_fen: 700 } });
    const details = await rejects(channel.refund({ ...request, refundNo: newNo('R'), amount_fen: 1301 }), 'channel_refused');
    expect(details).toMatchObject({ respCode: '30' });
    // The platform's own part is refunded under our own merchant code.
    const own = await channel.refund({ ...request, payNo: subOrders[2]!.payNo, refundNo: newNo('R'), amount_fen: 300, total_fen: 300, subMerchantId: undefined });
    expect(own).toMatchObject({ payNo: subOrders[2]!.payNo, state: 'succeeded', amount_fen: 300 });
    expect(sandbox.core.refunded_fen(sandbox.core.trade('unionpay', subOrders[0]!.payNo)!)).toBe(0);
    // The payment itself is untouched: every sub-order still reads as paid.
    expect((await channel.queryCombined(combineNo, subOrders, sent)).map((trade) => trade.state)).toEqual(['succeeded', 'succeeded', 'succeeded']);
  });

  it('faults: a dropped notice is found by query; a duplicate twice the same; a mis-signed one rejected and its retry accepted', async () => {
    sandbox.core.setFaults({ drop: 1 });
    const dropped = await paidCombined([100, 200]);
    await sandbox.core.untilDelivered();
    expect(noticesFor(dropped.combineNo)).toHaveLength(0);
    expect((await channel.queryCombined(dropped.combineNo, dropped.subOrders, dropped.sent)).map((trade) => trade.state)).toEqual(['succeeded', 'succeeded']);

    sandbox.core.setFaults({ duplicate: 1 });
    const doubled = await paidCombined([300, 400]);
    await sandbox.core.untilDelivered();
    const twice = noticesFor(doubled.combineNo);
    expect(twice).toHaveLength(2);
    expect(twice[0]).toEqual(twice[1]);

    const before = received.length;
    sandbox.core.setFaults({ misSign: 1 });
    const misSigned = await paidCombined([500, 600]);
    await sandbox.core.untilDelivered();
    const attempts = received.slice(before);
    expect(attempts.map((attempt) => (attempt.error ? (attempt.error as { code: string }).code : attempt.notice?.kind))).toEqual(['notification_rejected', 'combined']);
    expect(noticesFor(misSigned.combineNo)).toHaveLength(1);
  });

  it('faults: reordered notices arrive newest first, delayed ones still arrive; a UnionPay that is down is channel_unavailable', async () => {
    sandbox.core.setFaults({ reorder: true });
    const first = await paidCombined([100, 100]);
    const second = await paidCombined([200, 200]);
    expect(noticesFor(first.combineNo)).toHaveLength(0);
    sandbox.core.setFaults({ reorder: false, delay_ms: 30 });
    await sandbox.core.untilDelivered();
    sandbox.core.setFaults({ delay_ms: 0 });
    const order = received.flatMap((r) => (r.notice?.kind === 'combined' && [first.combineNo, second.combineNo].includes(r.notice.combineNo) ? [r.notice.combineNo] : []));
    expect(order).toEqual([second.combineNo, first.combineNo]);
    sandbox.core.setFaults({ down: ['unionpay'] });
    try {
      await rejects(channel.queryCombined(first.combineNo, first.subOrders, first.sent), 'channel_unavailable');
      await rejects(newCombined([100]), 'channel_unavailable');
    } finally {
      sandbox.core.setFaults({ down: [] });
    }
  });

  it("the day's file lists each sub-order as a line of its own (its payment and its refund), under the shared queryId", async () => {
    const { combineNo, subOrders } = await paidCombined([110, 220]);
    const refundNo = newNo('R');
    await channel.refund({ payNo: subOrders[0]!.payNo, refundNo, amount_fen: 10, total_fen: 110, reason: 'bill', notifyUrl, requested_at_ms: now(), combineNo, subMerchantId: SHOP_A });
    const parsed = channel.parseBill(await channel.downloadBill(chinaDate(now())));
    const queryId = queryIdOf(sandbox.core.trade('unionpay', subOrders[0]!.payNo)!.tradeNo);
    for (const sub of subOrders) {
      expect(parsed.filter((row) => row.payNo === sub.payNo && row.kind === 'payment')).toEqual([{ kind: 'payment', payNo: sub.payNo, channelTradeNo: queryId, amount_fen: sub.amount_fen, at_ms: expect.any(Number) }]);
    }
    expect(parsed.filter((row) => row.refundNo === refundNo)).toEqual([{ kind: 'refund', payNo: subOrders[0]!.payNo, channelTradeNo: queryId, refundNo, amount_fen: 10, at_ms: expect.any(Number) }]);
    expect(parsed.some((row) => row.payNo === combineNo)).toBe(false);
  });

  it("a single trade for one merchant's order is a split with one entry, refunded under that merchant", async () => {
    const payNo = newNo('P');
    await channel.create({ payNo, amount_fen: 900, subject: 'one shop', expires_at_ms: now() + 60_000, method: 'qr', notifyUrl, subMerchantId: SHOP_A });
    expect(sandbox.core.trade('unionpay', payNo)!.subMerchantId).toBe(SHOP_A);
    expect((await payClick(payNo)).status).toBe(200);
    const notice = await waitFor(() => noticesFor(payNo).find((candidate) => candidate.kind === 'trade'));
    expect(notice).toMatchObject({ kind: 'trade', trade: { payNo, state: 'succeeded', amount_fen: 900 } });
    const refund = await channel.refund({ payNo, refundNo: newNo('R'), amount_fen: 100, total_fen: 900, reason: 'x', notifyUrl, subMerchantId: SHOP_A });
    expect(refund.state).toBe('succeeded');
  });
});
