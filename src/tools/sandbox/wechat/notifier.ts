import { createHash } from 'node:crypto';
import type { SandboxCore } from '../core.ts';
import type { ChannelNotifier } from '../notifications.ts';
import type { SandboxEvent } from '../trades.ts';
import { refundNoticeResource, refundStatus, rfc3339, transactionBody, type MerchantIds } from './bodies.ts';
import { combinedBody } from './combined.ts';
import { platformHeaders, sealResource, type PlatformSigner } from './signing.ts';

/** WeChat's retry delays after a notification is not acknowledged: 15s, 15s, 30s, 3m, 10m, 20m, 30m ×3, 60m, 3h ×3, 6h ×2. */
export const WECHAT_RETRY_SCHEDULE_MS: readonly number[] = [
  15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600, 10_800, 10_800, 10_800, 21_600, 21_600,
].map((s) => s * 1000);

/** The same event keeps its id across retries, as WeChat's do, so a merchant can recognise a repeat. */
function noticeId(parts: string[]): string {
  const hex = createHash('sha256').update(parts.join('\n')).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

const REFUND_EVENTS: Readonly<Record<string, { event: string; summary: string }>> = {
  SUCCESS: { event: 'REFUND.SUCCESS', summary: '退款成功' },
  ABNORMAL: { event: 'REFUND.ABNORMAL', summary: '退款异常' },
};

export function wechatNotifier(core: SandboxCore, ids: MerchantIds, apiV3Key: string, signer: PlatformSigner): ChannelNotifier {
  return {
    retrySchedule_ms: WECHAT_RETRY_SCHEDULE_MS,
    acknowledged: (answer) => answer.status === 200 || answer.status === 204,
    build(event: SandboxEvent, options) {
      let notice: { id: string; at_ms: number; event: string; summary: string; type: string; resource: Record<string, unknown>; url: string };
      if (event.kind === 'paid') {
        const { trade } = event;
        // The payment notice tells of the payment, whatever happened to the trade since.
        const resource = { ...transactionBody(trade, ids), trade_state: 'SUCCESS', trade_state_desc: '支付成功' };
        notice = { id: noticeId([trade.tradeNo, 'paid']), at_ms: trade.paid_at_ms!, event: 'TRANSACTION.SUCCESS', summary: '支付成功', type: 'transaction', resource, url: trade.notifyUrl };
      } else if (event.kind === 'combined_paid') {
        // 合单支付通知: one callback for every sub-order, each with its own transaction_id.
        const { combined, trades } = event;
        // Like a single trade's notice, it tells of the payment, whatever happened to the sub-orders since.
        const body = combinedBody(combined, trades, ids);
        const resource = { ...body, sub_orders: (body.sub_orders as Array<Record<string, unknown>>).map((sub) => ({ ...sub, trade_state: 'SUCCESS' })) };
        const at_ms = trades[0]!.paid_at_ms!;
        notice = { id: noticeId([combined.combineNo, trades[0]!.tradeNo, 'combined_paid']), at_ms, event: 'TRANSACTION.SUCCESS', summary: '支付成功', type: 'transaction', resource, url: combined.notifyUrl };
      } else if (event.kind === 'refunded') {
        const { trade, refund } = event;
        const kind = REFUND_EVENTS[refundStatus(refund)];
        if (!kind) return undefined;
        notice = {
          id: noticeId([trade.tradeNo, refund.refundNo, kind.event]),
          at_ms: refund.succeeded_at_ms ?? refund.created_at_ms,
          ...kind,
          type: 'refund',
          resource: refundNoticeResource(trade, refund, ids.mchId),
          url: refund.notifyUrl ?? trade.notifyUrl,
        };
      } else {
        // WeChat says nothing when a trade is closed.
        return undefined;
      }
      const body = JSON.stringify({
        id: notice.id,
        create_time: rfc3339(notice.at_ms),
        resource_type: 'encrypt-resource',
        event_type: notice.event,
        summary: notice.summary,
        resource: { original_type: notice.type, ...sealResource(apiV3Key, JSON.stringify(notice.resource), notice.type) },
      });
      return {
        url: notice.url,
        headers: { 'Content-Type': 'application/json', 'User-Agent': 'Mozilla/4.0', ...platformHeaders(signer, body, core.now(), options.misSign) },
        body,
      };
    },
  };
}
