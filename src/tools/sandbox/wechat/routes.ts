import { createCipheriv, createHash, randomBytes, X509Certificate } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { z } from 'zod';
import type { SandboxCore } from '../core.ts';
import { cashierUrl, type SandboxServer } from '../module.ts';
import type { WechatSandboxKeys } from './keys.ts';
import { refundBody, rfc3339, TRADE_TYPES, tradeBill, transactionBody, type MerchantIds } from './bodies.ts';
import { authenticated, parseBody, routeMaker, sendSigned, wechatError, type Handler } from './http.ts';
import { platformSigner, type MerchantIdentity, type PlatformSigner } from './signing.ts';

/** WeChat Pay API v3's routes as the sandbox plays them: orders, query and close; refunds; the trade bill. */

/** How long a bill's download_url works. */
const BILL_URL_TTL_MS = 5 * 60_000;
/** Most bill files kept for download at once. */
const MAX_BILL_DOWNLOADS = 100;
/** WeChat's default when an order names no time_expire. */
export const DEFAULT_EXPIRY_MS = 2 * 3600_000;

const OUT_NO = /^[0-9A-Za-z_\-|*]+$/;
const amountSchema = z.object({ total: z.number().int().positive(), currency: z.literal('CNY').optional() });
const orderSchema = z.object({
  appid: z.string().min(1).max(32),
  mchid: z.string().min(1).max(32),
  description: z.string().min(1).max(127),
  out_trade_no: z.string().min(6).max(32).regex(OUT_NO),
  time_expire: z.string().optional(),
  attach: z.string().max(128).optional(),
  notify_url: z.string().url().max(255),
  amount: amountSchema,
  payer: z.object({ openid: z.string().min(1).max(128) }).optional(),
  scene_info: z.object({ payer_client_ip: z.string().min(1) }).passthrough().optional(),
});
const closeSchema = z.object({ mchid: z.string().min(1) });
const refundSchema = z.object({
  out_trade_no: z.string().min(1).max(32).optional(),
  transaction_id: z.string().min(1).max(32).optional(),
  out_refund_no: z.string().min(1).max(64).regex(/^[0-9A-Za-z_\-|*@]+$/),
  reason: z.string().max(80).optional(),
  notify_url: z.string().url().max(256).optional(),
  amount: z.object({ refund: z.number().int().positive(), total: z.number().int().positive(), currency: z.literal('CNY') }),
});

export function parseExpiry(text: string | undefined, now_ms: number): number {
  if (text === undefined) return now_ms + DEFAULT_EXPIRY_MS;
  const at_ms = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?([+-]\d{2}:\d{2}|Z)$/.test(text) ? Date.parse(text) : NaN;
  if (!Number.isFinite(at_ms)) throw wechatError(400, 'PARAM_ERROR', 'time_expire 不是 RFC 3339 格式');
  return at_ms;
}

export interface RouteContext {
  server: SandboxServer;
  core: SandboxCore;
  keys: WechatSandboxKeys;
  ids: MerchantIds;
  merchant: MerchantIdentity;
  signer: PlatformSigner;
  base: () => string;
  route: (method: 'GET' | 'POST', path: string, handle: Handler) => void;
}

/**
 * A trade made by a direct or a partner order, and the answer for its kind: the trade number may
 * not be paid or closed already; a repeat of an open one is the same trade.
 */
export function openTrade(
  core: SandboxCore,
  base: string,
  kind: string,
  order: { out_trade_no: string; amount: { total: number }; description: string; notify_url: string; time_expire?: string | undefined; tradeType: string; extra?: Record<string, string>; subMerchantId?: string },
): { status: number; body: Record<string, string> } {
  const existing = core.trade('wechat', order.out_trade_no);
  if (existing?.paid_at_ms !== undefined) throw wechatError(400, 'ORDERPAID', '该订单已支付');
  if (existing?.state === 'CLOSED') throw wechatError(400, 'ORDER_CLOSED', '订单已关闭');
  const trade = core.createTrade({
    channel: 'wechat',
    payNo: order.out_trade_no,
    amount_fen: order.amount.total,
    subject: order.description,
    method: order.tradeType,
    notifyUrl: order.notify_url,
    expires_at_ms: parseExpiry(order.time_expire, core.now()),
    extra: { prepay_id: `wx${randomBytes(16).toString('hex').slice(0, 30)}`, ...order.extra },
    ...(order.subMerchantId !== undefined && { subMerchantId: order.subMerchantId }),
  });
  const cashier = cashierUrl(base, 'wechat', trade.payNo);
  if (kind === 'native') return { status: 200, body: { code_url: cashier } };
  if (kind === 'h5') return { status: 200, body: { h5_url: `${cashier}?prepay_id=${trade.extra.prepay_id}` } };
  return { status: 200, body: { prepay_id: trade.extra.prepay_id! } };
}

export function tradeRoutes({ core, keys, base, route }: RouteContext): void {
  route('POST', '/v3/pay/transactions/:kind', (request, raw) => {
    const kind = (request.params as { kind: string }).kind;
    const tradeType = TRADE_TYPES[kind];
    if (!tradeType) throw wechatError(404, 'NOT_FOUND', '无效的请求路径');
    const order = parseBody(orderSchema, raw);
    if (order.mchid !== keys.mchId) throw wechatError(400, 'MCH_NOT_EXISTS', '商户号不存在');
    if (order.appid !== keys.appId) throw wechatError(400, 'APPID_MCHID_NOT_MATCH', 'appid和mch_id不匹配');
    if (kind === 'jsapi' && !order.payer) throw wechatError(400, 'PARAM_ERROR', '输入源"/body/payer/openid"映射到字段"用户标识"必填性规则校验失败');
    if (kind === 'h5' && !order.scene_info) throw wechatError(400, 'PARAM_ERROR', '输入源"/body/scene_info/payer_client_ip"必填性规则校验失败');
    return openTrade(core, base(), kind, { ...order, tradeType, ...(order.payer ? { extra: { openid: order.payer.openid } } : {}) });
  });

}

export function queryAndCloseRoutes({ core, keys, ids, route }: RouteContext): void {
  route('GET', '/v3/pay/transactions/out-trade-no/:no', (request) => {
    const { no } = request.params as { no: string };
    if ((request.query as Record<string, string>).mchid !== keys.mchId) throw wechatError(400, 'PARAM_ERROR', 'mchid 有误');
    const trade = core.trade('wechat', no);
    // A sub-order is the platform's under a sub-merchant, not the direct merchant's: "合单订单需要使用查询合单订单接口".
    if (!trade || trade.subMerchantId !== undefined) throw wechatError(404, 'ORDER_NOT_EXIST', '订单不存在');
    return { status: 200, body: transactionBody(trade, ids) };
  });

  route('POST', '/v3/pay/transactions/out-trade-no/:no/close', (request, raw) => {
    const { no } = request.params as { no: string };
    if (parseBody(closeSchema, raw).mchid !== keys.mchId) throw wechatError(400, 'PARAM_ERROR', 'mchid 有误');
    if (core.trade('wechat', no)?.subMerchantId !== undefined) throw wechatError(404, 'ORDER_NOT_EXIST', '订单不存在');
    const outcome = core.close('wechat', no);
    if (outcome === 'not_found') throw wechatError(404, 'ORDER_NOT_EXIST', '订单不存在');
    if (outcome === 'already_paid') throw wechatError(400, 'ORDERPAID', '订单已支付');
    return { status: 204 };
  });

}

export function refundRoutes({ core, route }: RouteContext): void {
  route('POST', '/v3/refund/domestic/refunds', (_request, raw) => {
    const input = parseBody(refundSchema, raw);
    const trade = input.out_trade_no ? core.trade('wechat', input.out_trade_no) : input.transaction_id ? core.tradeByChannelNo('wechat', input.transaction_id) : undefined;
    // A sub-merchant's trade is refunded under its sub_mchid (/v3/ecommerce/refunds/apply), never here.
    if (!trade || trade.subMerchantId !== undefined) throw wechatError(404, 'RESOURCE_NOT_EXISTS', '订单不存在');
    if (input.amount.total !== trade.amount_fen) throw wechatError(400, 'PARAM_ERROR', '订单金额与原订单不一致');
    const existing = trade.refunds.find((r) => r.refundNo === input.out_refund_no);
    if (existing && existing.amount_fen !== input.amount.refund) throw wechatError(400, 'INVALID_REQUEST', '退款单号重复，且与首次请求的退款金额不一致');
    const refund = core.refund('wechat', trade.payNo, { refundNo: input.out_refund_no, amount_fen: input.amount.refund, reason: input.reason, notifyUrl: input.notify_url });
    if (existing) return { status: 200, body: refundBody(trade, refund) };
    // The core only announces refunds that went through; WeChat also tells of one that failed.
    if (refund.state === 'FAILED') {
      core.renotify({ kind: 'refunded', trade, refund });
      return { status: 200, body: refundBody(trade, refund) };
    }
    // WeChat accepts a refund first and completes it after; a query a moment later says SUCCESS.
    return { status: 200, body: refundBody(trade, refund, 'PROCESSING') };
  });

  route('GET', '/v3/refund/domestic/refunds/:no', (request) => {
    const found = core.findRefund('wechat', (request.params as { no: string }).no);
    if (!found || found.trade.subMerchantId !== undefined) throw wechatError(404, 'RESOURCE_NOT_EXISTS', '退款单不存在');
    return { status: 200, body: refundBody(found.trade, found.refund) };
  });

}

export function billRoutes({ server, core, ids, merchant, signer, base, route }: RouteContext): void {
  const bills = new Map<string, { file: Buffer; expires_at_ms: number }>();
  route('GET', '/v3/bill/tradebill', (request) => {
    const query = request.query as Record<string, string | undefined>;
    const date = query.bill_date ?? '';
    if (!/^\d{4}-\d{2}-\d{2}$/.test(date)) throw wechatError(400, 'PARAM_ERROR', 'bill_date 格式应为 YYYY-MM-DD');
    if ((query.bill_type ?? 'ALL') !== 'ALL') throw wechatError(400, 'PARAM_ERROR', 'the sandbox makes bill_type=ALL bills only');
    if (query.tar_type !== undefined && query.tar_type !== 'GZIP') throw wechatError(400, 'PARAM_ERROR', 'tar_type 只支持 GZIP');
    const rows = core.billRows('wechat', date);
    if (rows.length === 0) throw wechatError(400, 'NO_STATEMENT_EXIST', '账单文件不存在');
    const bill = Buffer.from(tradeBill(rows, ids, (payNo) => core.trade('wechat', payNo)), 'utf8');
    const token = randomBytes(24).toString('base64url');
    for (const [t, entry] of bills) if (entry.expires_at_ms < core.now() || bills.size >= MAX_BILL_DOWNLOADS) bills.delete(t);
    bills.set(token, { file: query.tar_type === 'GZIP' ? gzipSync(bill) : bill, expires_at_ms: core.now() + BILL_URL_TTL_MS });
    return {
      status: 200,
      body: {
        hash_type: 'SHA1',
        // Over the bill itself, before gzip, as WeChat's documentation describes hash_value.
        hash_value: createHash('sha1').update(bill).digest('hex'),
        download_url: `${base()}/wechat/v3/billdownload/file?token=${token}`,
      },
    };
  });

  // The file comes back unsigned, as WeChat's does; the merchant checks it against hash_value.
  server.get('/wechat/v3/billdownload/file', async (request, reply) => {
    const denied = authenticated(merchant, request, '', core.now());
    if (denied) return sendSigned(reply, signer, denied, core.now());
    const entry = bills.get(String((request.query as Record<string, unknown>).token ?? ''));
    if (!entry || entry.expires_at_ms < core.now()) return sendSigned(reply, signer, { status: 400, body: { code: 'INVALID_REQUEST', message: '下载地址已失效' } }, core.now());
    return reply.status(200).type('application/octet-stream').send(entry.file);
  });
}

/**
 * GET /v3/certificates: the platform certificates, each sealed with the APIv3 key
 * (AEAD_AES_256_GCM, associated_data "certificate"), as official SDKs fetch them at start-up.
 * The answer is signed with the certificate's own key, so a client that knows no key yet can
 * check it with the certificate it just opened. Keys served as bare public keys have no certificate.
 */
export function certificateRoutes({ server, core, keys, merchant }: RouteContext): void {
  const certified = keys.platform.filter((platformKey) => platformKey.publicKeyPem.includes('BEGIN CERTIFICATE'));
  if (certified.length === 0) return;
  const signer = platformSigner(certified[0]!.serial, certified[0]!.privateKeyPem);
  routeMaker(server, core, merchant, signer)('GET', '/v3/certificates', () => ({
    status: 200,
    body: {
      data: certified.map(({ serial, publicKeyPem }) => {
        const certificate = new X509Certificate(publicKeyPem);
        const nonce = randomBytes(6).toString('hex');
        const cipher = createCipheriv('aes-256-gcm', Buffer.from(keys.apiV3Key, 'utf8'), Buffer.from(nonce, 'utf8')).setAAD(Buffer.from('certificate', 'utf8'));
        const ciphertext = Buffer.concat([cipher.update(publicKeyPem, 'utf8'), cipher.final(), cipher.getAuthTag()]).toString('base64');
        return {
          serial_no: serial,
          effective_time: rfc3339(Date.parse(certificate.validFrom)),
          expire_time: rfc3339(Date.parse(certificate.validTo)),
          encrypt_certificate: { algorithm: 'AEAD_AES_256_GCM', nonce, associated_data: 'certificate', ciphertext },
        };
      }),
    },
  }));
}
