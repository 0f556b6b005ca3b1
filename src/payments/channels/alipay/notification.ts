import type { AlipaySdk } from 'alipay-sdk';
import { AppError } from '../../../platform/errors.ts';
import type { ChannelNotice, ChannelTrade, InboundRequest } from '../types.ts';
import { parseChinaTime, yuanToFen } from './format.ts';

/** A notification bigger than this is not Alipay's (theirs are a few kilobytes). */
export const MAX_NOTIFICATION_BYTES = 64 * 1024;

/**
 * An Alipay asynchronous notification (trade_status_sync): a form POST signed with Alipay's
 * key over every field but sign and sign_type. Nothing in it is read before the signature
 * holds; then app_id must be ours, since a genuine notification for another app is not ours
 * to act on.
 */
export function parseAlipayNotification(sdk: AlipaySdk, appId: string, request: InboundRequest): ChannelNotice {
  if (request.method.toUpperCase() !== 'POST') throw rejected('not a POST');
  if (Buffer.byteLength(request.rawBody) > MAX_NOTIFICATION_BYTES) throw rejected('too large');
  const fields: Record<string, string> = {};
  for (const [key, value] of new URLSearchParams(request.rawBody)) {
    // A repeated field would let the verified value and the read value differ.
    if (key in fields) throw rejected(`field ${key} repeated`);
    fields[key] = value;
  }
  if (!fields.sign) throw rejected('no signature');
  let verified = false;
  try {
    // V2 verifies the values as received (already form-decoded), not decoded a second time.
    verified = sdk.checkNotifySignV2(fields);
  } catch {
    verified = false;
  }
  if (!verified) throw rejected('signature does not verify');
  if (fields.app_id !== appId) throw rejected('for another app_id');
  if (fields.notify_type !== 'trade_status_sync') throw rejected(`unexpected notify_type ${fields.notify_type}`);
  return { kind: 'trade', trade: tradeFromNotification(fields) };
}

/**
 * Alipay sends refunds as trade notices: TRADE_SUCCESS with refund_fee after a partial
 * refund, TRADE_CLOSED after a full one. A TRADE_CLOSED that was paid (it has gmt_payment
 * or refund_fee) is therefore a refunded payment, still succeeded; only one never paid is closed.
 */
function tradeFromNotification(f: Record<string, string>): ChannelTrade {
  const payNo = f.out_trade_no;
  if (!payNo) throw rejected('no out_trade_no');
  const trade: ChannelTrade = { payNo, state: 'pending' };
  if (f.trade_no) trade.channelTradeNo = f.trade_no;
  if (f.total_amount) trade.amount_fen = yuanToFen(f.total_amount, 'total_amount');
  if (f.gmt_payment) trade.paid_at_ms = parseChinaTime(f.gmt_payment, 'gmt_payment');
  if (f.refund_fee) trade.refunded_fen = yuanToFen(f.refund_fee, 'refund_fee');
  const paid = f.gmt_payment !== undefined || f.refund_fee !== undefined;
  switch (f.trade_status) {
    case 'WAIT_BUYER_PAY':
      trade.state = 'pending';
      break;
    case 'TRADE_SUCCESS':
      trade.state = 'succeeded';
      break;
    case 'TRADE_FINISHED':
      trade.state = 'succeeded';
      trade.finished = true;
      break;
    case 'TRADE_CLOSED':
      trade.state = paid ? 'succeeded' : 'closed';
      break;
    default:
      throw rejected(`unknown trade_status ${f.trade_status}`);
  }
  return trade;
}

function rejected(reason: string): AppError {
  return new AppError('notification_rejected', { details: { channel: 'alipay', reason } });
}
