import { z } from 'zod';
import { TRADE_TYPES, transactionBody } from './bodies.ts';
import { parseBody, wechatError } from './http.ts';
import { openTrade, type RouteContext } from './routes.ts';

/**
 * A merchant's trade alone, made by the platform in the partner form (服务商 / 平台收付通):
 * /v3/pay/partner/transactions/*, with sp_appid + sp_mchid (the platform) and sub_mchid (the
 * merchant), asked for and closed naming both. Refunds go through /v3/ecommerce/refunds.
 */

const MCHID = /^\d{1,32}$/;

const partnerOrderSchema = z.object({
  sp_appid: z.string().min(1).max(32),
  sp_mchid: z.string().min(1).max(32),
  sub_appid: z.string().max(32).optional(),
  sub_mchid: z.string().regex(MCHID, 'sub_mchid 必填'),
  description: z.string().min(1).max(127),
  out_trade_no: z.string().min(6).max(32).regex(/^[0-9A-Za-z_\-|*]+$/),
  time_expire: z.string().optional(),
  attach: z.string().max(128).optional(),
  notify_url: z.string().url().max(255),
  amount: z.object({ total: z.number().int().positive(), currency: z.literal('CNY').optional() }),
  payer: z.object({ sp_openid: z.string().min(1).max(128).optional(), sub_openid: z.string().min(1).max(128).optional() }).optional(),
  scene_info: z.object({ payer_client_ip: z.string().min(1) }).passthrough().optional(),
  settle_info: z.object({ profit_sharing: z.boolean().optional() }).optional(),
});

const partnerCloseSchema = z.object({ sp_mchid: z.string().min(1), sub_mchid: z.string().min(1) });

export function partnerRoutes({ core, keys, ids, base, route }: RouteContext): void {
  route('POST', '/v3/pay/partner/transactions/:kind', (request, raw) => {
    const kind = (request.params as { kind: string }).kind;
    const tradeType = TRADE_TYPES[kind];
    if (!tradeType) throw wechatError(404, 'NOT_FOUND', '无效的请求路径');
    const order = parseBody(partnerOrderSchema, raw);
    if (order.sp_mchid !== keys.mchId) throw wechatError(400, 'MCH_NOT_EXISTS', '服务商商户号不存在');
    if (order.sp_appid !== keys.appId) throw wechatError(400, 'APPID_MCHID_NOT_MATCH', 'sp_appid和sp_mchid不匹配');
    if (order.sub_mchid === keys.mchId) throw wechatError(400, 'INVALID_REQUEST', '子商户号不能是服务商商户号');
    const openid = order.payer?.sp_openid ?? order.payer?.sub_openid;
    if (kind === 'jsapi' && !openid) throw wechatError(400, 'PARAM_ERROR', '输入源"/body/payer/sp_openid"必填性规则校验失败');
    if (kind === 'h5' && !order.scene_info) throw wechatError(400, 'PARAM_ERROR', '输入源"/body/scene_info/payer_client_ip"必填性规则校验失败');
    const extra = { ...(openid ? { openid } : {}), profit_sharing: String(order.settle_info?.profit_sharing ?? false) };
    return openTrade(core, base(), kind, { ...order, tradeType, extra, subMerchantId: order.sub_mchid });
  });

  /** The merchant's own trade, never a combined payment's sub-order ("合单订单需要使用查询合单订单接口"). */
  const partnerTrade = (no: string, subMchid: string | undefined) => {
    const trade = core.trade('wechat', no);
    return trade && trade.combineNo === undefined && trade.subMerchantId !== undefined && trade.subMerchantId === subMchid ? trade : undefined;
  };

  route('GET', '/v3/pay/partner/transactions/out-trade-no/:no', (request) => {
    const query = request.query as Record<string, string | undefined>;
    if (query.sp_mchid !== keys.mchId) throw wechatError(400, 'PARAM_ERROR', 'sp_mchid 有误');
    if (!query.sub_mchid) throw wechatError(400, 'PARAM_ERROR', '输入源"/query/sub_mchid"必填性规则校验失败');
    const trade = partnerTrade((request.params as { no: string }).no, query.sub_mchid);
    if (!trade) throw wechatError(404, 'ORDER_NOT_EXIST', '订单不存在');
    return { status: 200, body: transactionBody(trade, ids) };
  });

  route('POST', '/v3/pay/partner/transactions/out-trade-no/:no/close', (request, raw) => {
    const input = parseBody(partnerCloseSchema, raw);
    if (input.sp_mchid !== keys.mchId) throw wechatError(400, 'PARAM_ERROR', 'sp_mchid 有误');
    const trade = partnerTrade((request.params as { no: string }).no, input.sub_mchid);
    if (!trade) throw wechatError(404, 'ORDER_NOT_EXIST', '订单不存在');
    const outcome = core.close('wechat', trade.payNo);
    if (outcome === 'already_paid') throw wechatError(400, 'ORDERPAID', '订单已支付');
    return { status: 204 };
  });
}
