import type { KeyObject } from 'node:crypto';
import { z } from 'zod';
import { AppError } from '../../../platform/errors.ts';
import type { ChannelNotice, InboundRequest } from '../types.ts';
import { refundNoticeSchema, toRefund, toTrade, transactionSchema } from './answers.ts';
import { combinedNoticeTrades, combinedSchema } from './combined.ts';
import { decryptResource, platformSignatureProblem } from './protocol.ts';

/**
 * WeChat's callbacks (回调通知): the platform signature over the raw body is checked before
 * anything in it is read, then the resource is opened with the APIv3 key.
 */

const notificationSchema = z.object({
  id: z.string(),
  event_type: z.string(),
  resource: z.object({ algorithm: z.string(), ciphertext: z.string(), nonce: z.string(), associated_data: z.string().optional() }),
});

function rejected(reason: string): AppError {
  return new AppError('notification_rejected', { message: `WeChat Pay notification rejected: ${reason}`, details: { channel: 'wechat', reason } });
}

export function notificationParser(
  settings: { mchId: string; apiV3Key: string },
  ring: ReadonlyMap<string, KeyObject>,
  now: () => number,
): (request: InboundRequest) => Promise<ChannelNotice> {
  return async function parseNotification(request: InboundRequest): Promise<ChannelNotice> {
    if (request.method.toUpperCase() !== 'POST') throw rejected('not a POST');
    const h = request.headers;
    const problem = platformSignatureProblem(
      ring,
      { timestamp: h['wechatpay-timestamp'], nonce: h['wechatpay-nonce'], signature: h['wechatpay-signature'], serial: h['wechatpay-serial'] },
      request.rawBody,
      now(),
    );
    if (problem) throw rejected(problem);
    let envelope: z.infer<typeof notificationSchema>;
    let resource: unknown;
    try {
      envelope = notificationSchema.parse(JSON.parse(request.rawBody));
    } catch {
      throw rejected('body is not a WeChat notification');
    }
    try {
      resource = JSON.parse(decryptResource(settings.apiV3Key, envelope.resource));
    } catch {
      throw rejected('resource does not decrypt with our APIv3 key');
    }
    const parse = <T>(schema: z.ZodType<T>): T => {
      const parsed = schema.safeParse(resource);
      if (!parsed.success) throw rejected(`unexpected ${envelope.event_type} resource`);
      return parsed.data;
    };
    // 合单支付通知: the same event, one callback for every sub-order, told apart by its combine number.
    if (envelope.event_type === 'TRANSACTION.SUCCESS' && typeof resource === 'object' && resource !== null && 'combine_out_trade_no' in resource) {
      const combined = parse(combinedSchema);
      return { kind: 'combined', combineNo: combined.combine_out_trade_no, trades: combinedNoticeTrades(combined, settings.mchId, rejected) };
    }
    if (envelope.event_type === 'TRANSACTION.SUCCESS') {
      const transaction = parse(transactionSchema);
      if ((transaction.mchid ?? transaction.sp_mchid) !== settings.mchId) throw rejected('for another merchant');
      return { kind: 'trade', trade: toTrade(transaction, rejected) };
    }
    if (envelope.event_type.startsWith('REFUND.')) {
      const refund = parse(refundNoticeSchema);
      if ((refund.mchid ?? refund.sp_mchid) !== settings.mchId) throw rejected('for another merchant');
      return { kind: 'refund', refund: toRefund(refund, refund.refund_status, rejected) };
    }
    // Answered as not handled, so WeChat keeps it until we learn the event.
    throw rejected(`unhandled event ${envelope.event_type}`);
  };
}
