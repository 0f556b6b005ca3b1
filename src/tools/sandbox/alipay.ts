import { generateKeyPairSync, randomBytes, randomInt } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AlipaySettings } from '../../payments/channels/alipay.ts';
import { DEFAULT_ALIPAY_BILL_DOWNLOAD_TIMEOUT_MS, DEFAULT_ALIPAY_TIMEOUT_MS } from '../../payments/channels/alipay/settings.ts';
import { chinaDate } from '../../payments/channels/types.ts';
import { alipayBillFile } from './alipay/bill.ts';
import { mergeMethods } from './alipay/merge-api.ts';
import { alipayNotifier } from './alipay/notify.ts';
import { rsa2Verify, signContent, signedAnswer } from './alipay/protocol.ts';
import { businessFailed, ok, TRADE_METHODS, type ApiBody, type ApiContext, type ApiResult } from './alipay/trade-api.ts';
import type { SandboxCore } from './core.ts';
import { cashierUrl, type SandboxChannelModule, type SandboxServer } from './module.ts';

/**
 * Alipay's side of the sandbox: the v2 gateway (`/alipay/gateway.do`, GET or POST), which
 * checks each request's RSA2 signature with the app's public key and signs every answer with
 * Alipay's private key; the buyer-facing pay methods, which send the browser to the cashier;
 * merge pay (合并支付, alipay/merge-api.ts); notifications; and the bill download.
 */

export interface AlipaySandboxKeys {
  appId: string;
  /** The merchant's Alipay account id (PID, 2088…): seller_id in notifications, the bill's file name. */
  sellerId: string;
  appPrivateKeyPem: string;
  appPublicKeyPem: string;
  alipayPrivateKeyPem: string;
  alipayPublicKeyPem: string;
}

/** Bill download links live 30 seconds, as Alipay's do. */
const BILL_LINK_TTL_MS = 30_000;
const MAX_BILL_LINKS = 1000;
const BILL_METHOD = 'alipay.data.dataservice.bill.downloadurl.query';
/** Methods a browser or the app opens: they lead to the cashier instead of answering JSON. */
const BUYER_FACING = new Set([
  'alipay.trade.page.pay',
  'alipay.trade.wap.pay',
  'alipay.trade.app.pay',
  'alipay.trade.page.merge.pay',
  'alipay.trade.wap.merge.pay',
  'alipay.trade.app.merge.pay',
]);
const REQUIRED = [
  ['method', 'isv.missing-method'],
  ['app_id', 'isv.missing-app-id'],
  ['sign_type', 'isv.missing-signature-type'],
  ['sign', 'isv.missing-signature'],
  ['timestamp', 'isv.missing-timestamp'],
  ['version', 'isv.missing-version'],
] as const;
const TIMESTAMP = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/;

export const alipaySandbox: SandboxChannelModule<AlipaySandboxKeys, AlipaySettings> = {
  name: 'alipay',

  generateKeys() {
    const pair = () => generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } });
    const app = pair();
    const alipay = pair();
    return {
      appId: `2021${digits(12)}`,
      sellerId: `2088${digits(12)}`,
      appPrivateKeyPem: app.privateKey,
      appPublicKeyPem: app.publicKey,
      alipayPrivateKeyPem: alipay.privateKey,
      alipayPublicKeyPem: alipay.publicKey,
    };
  },

  settingsFor(keys, sandboxUrl) {
    return {
      appId: keys.appId,
      appPrivateKeyPem: keys.appPrivateKeyPem,
      alipayPublicKeyPem: keys.alipayPublicKeyPem,
      gatewayUrl: `${sandboxUrl}/alipay/gateway.do`,
      timeout_ms: DEFAULT_ALIPAY_TIMEOUT_MS,
      billDownloadTimeout_ms: DEFAULT_ALIPAY_BILL_DOWNLOAD_TIMEOUT_MS,
    };
  },

  register(server, core, keys, base) {
    core.registerNotifier('alipay', alipayNotifier(keys, core.now));
    const bills = billLinks(core, keys, base);
    const merge = mergeMethods();
    const handle = (request: FastifyRequest, reply: FastifyReply) => gateway(request, reply, { core, keys, base, bills, merge });
    server.route({ method: ['GET', 'POST'], url: '/alipay/gateway.do', handler: handle });
    bills.route(server);
  },
};

interface Gateway {
  core: SandboxCore;
  keys: AlipaySandboxKeys;
  base: () => string;
  bills: ReturnType<typeof billLinks>;
  merge: ReturnType<typeof mergeMethods>;
}

async function gateway(request: FastifyRequest, reply: FastifyReply, g: Gateway) {
  const collected = collectParams(request.url, String(request.headers['content-type'] ?? ''), request.body);
  const params = collected.params;
  const method = params.method || undefined;
  const refusal = collected.error ?? checkCommon(params, g.keys);
  let result: ApiResult;
  if (refusal) result = { kind: 'answer', body: refusal };
  else {
    let biz: unknown;
    try {
      biz = JSON.parse(params.biz_content ?? '{}');
    } catch {
      biz = undefined;
    }
    const handler = method === BILL_METHOD ? g.bills.method : Object.hasOwn(g.merge, method!) ? g.merge[method!] : TRADE_METHODS[method!];
    if (!biz || typeof biz !== 'object' || Array.isArray(biz)) result = { kind: 'answer', body: invalid('isv.invalid-parameter', '参数无效: biz_content') };
    else if (!handler) result = { kind: 'answer', body: invalid('isv.invalid-method', '不存在的方法名') };
    else result = handler({ core: g.core, base: g.base, biz: biz as Record<string, unknown>, params });
  }
  if (result.kind === 'cashier') return reply.redirect(cashierUrl(g.base(), 'alipay', result.payNo), 302);
  if (method && BUYER_FACING.has(method)) {
    // A browser gets Alipay's error page, not JSON.
    const body = result.body;
    return reply
      .status(200)
      .type('text/html; charset=utf-8')
      .send(`<!doctype html><html><head><meta charset="utf-8"><title>支付宝 - 错误</title></head><body><h1>错误代码 ${escapeHtml(String(body.sub_code ?? body.code))}</h1><p>${escapeHtml(String(body.sub_msg ?? body.msg))}</p></body></html>`);
  }
  return reply.type('application/json;charset=utf-8').send(signedAnswer(method, result.body, g.keys.alipayPrivateKeyPem));
}

/**
 * The SDK puts the common parameters in the query string and biz_content in the form body;
 * the gateway reads both as one set. A name given twice with different values is refused.
 */
function collectParams(url: string, contentType: string, body: unknown): { params: Record<string, string>; error?: ApiBody } {
  const params: Record<string, string> = {};
  let error: ApiBody | undefined;
  const add = (entries: Iterable<[string, string]>) => {
    for (const [name, value] of entries) {
      if (name in params && params[name] !== value) error = invalid('isv.invalid-parameter', `参数重复: ${name}`);
      params[name] = value;
    }
  };
  add(new URL(url, 'http://gateway').searchParams);
  if (typeof body === 'string' && body !== '') {
    if (contentType.startsWith('multipart/') || contentType.includes('json')) error = invalid('isv.invalid-content-type', '不支持的请求格式');
    else add(new URLSearchParams(body));
  }
  return error ? { params, error } : { params };
}

function checkCommon(params: Record<string, string>, keys: AlipaySandboxKeys): ApiBody | undefined {
  for (const [name, sub_code] of REQUIRED) {
    if (!params[name]) return { code: '40001', msg: 'Missing Required Arguments', sub_code, sub_msg: `缺少${name}参数` };
  }
  if (params.app_id !== keys.appId) return invalid('isv.invalid-app-id', '无效的AppID参数');
  if (params.charset && params.charset.toLowerCase() !== 'utf-8') return invalid('isv.invalid-charset', '字符集错误');
  if (params.format && params.format.toUpperCase() !== 'JSON') return invalid('isv.invalid-format', '无效的数据格式');
  if (params.sign_type !== 'RSA2') return invalid('isv.invalid-signature-type', '无效的签名类型');
  if (!TIMESTAMP.test(params.timestamp!)) return invalid('isv.invalid-timestamp', '非法的时间戳参数');
  // Requests are signed over every parameter but sign, sign_type included (notifications leave it out).
  const content = signContent(params, ['sign']);
  if (!rsa2Verify(content, params.sign!, keys.appPublicKeyPem)) {
    return invalid('isv.invalid-signature', `验签出错，建议检查签名字符串或签名私钥与应用公钥是否匹配，网关生成的验签字符串为：${content}`);
  }
  return undefined;
}

function invalid(sub_code: string, sub_msg: string): ApiBody {
  return { code: '40002', msg: 'Invalid Arguments', sub_code, sub_msg };
}

/** The bill method and the short-lived links it hands out. */
function billLinks(core: SandboxCore, keys: AlipaySandboxKeys, base: () => string) {
  const links = new Map<string, { date: string; expires_at_ms: number }>();
  return {
    method(ctx: ApiContext): ApiResult {
      const { bill_type, bill_date } = ctx.biz;
      if (bill_type !== 'trade') return { kind: 'answer', body: invalid('isv.invalid-parameter', '参数无效: bill_type (the sandbox has trade bills only)') };
      if (typeof bill_date !== 'string' || !/^\d{4}-\d{2}-\d{2}$/.test(bill_date) || Number.isNaN(Date.parse(bill_date))) {
        return { kind: 'answer', body: invalid('isv.invalid-parameter', '参数无效: bill_date') };
      }
      if (bill_date > chinaDate(core.now())) return { kind: 'answer', body: businessFailed('isp.bill_not_exist', '账单不存在') };
      for (const [id, link] of links) if (link.expires_at_ms < core.now() || links.size >= MAX_BILL_LINKS) links.delete(id);
      const fileId = randomBytes(16).toString('hex');
      links.set(fileId, { date: bill_date, expires_at_ms: core.now() + BILL_LINK_TTL_MS });
      const ymd = bill_date.replaceAll('-', '');
      const url = `${base()}/alipay/bill/download?bizType=trade&userId=${keys.sellerId}&fileType=csv.zip&bizDates=${ymd}&downloadFileName=${keys.sellerId}_${ymd}.csv.zip&fileId=${fileId}`;
      return { kind: 'answer', body: ok({ bill_download_url: url }) };
    },
    route(server: SandboxServer) {
      server.get('/alipay/bill/download', async (request, reply) => {
        const fileId = new URL(request.url, 'http://gateway').searchParams.get('fileId') ?? '';
        const link = links.get(fileId);
        if (!link || link.expires_at_ms < core.now()) return reply.status(404).type('text/plain; charset=utf-8').send('文件不存在或链接已过期');
        const file = alipayBillFile(keys.sellerId, link.date, core.billRows('alipay', link.date), core.now());
        return reply
          .type('application/octet-stream')
          .header('content-disposition', `attachment; filename="${file.name}"`)
          .send(Buffer.from(file.zip));
      });
    },
  };
}

function digits(n: number): string {
  let out = '';
  for (let i = 0; i < n; i++) out += String(randomInt(10));
  return out;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (character) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[character]!);
}
