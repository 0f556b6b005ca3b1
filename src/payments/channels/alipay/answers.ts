import type { AlipaySdkCommonResult } from 'alipay-sdk';
import { AppError } from '../../../platform/errors.ts';
import { fenToYuan } from './format.ts';

/** Reading the v2 gateway's answers, shared by the trade and the merge pay calls. */

export type Answer = AlipaySdkCommonResult;

export const SUCCESS = '10000';
/** Alipay's subject limit. */
export const MAX_SUBJECT_CHARS = 256;

export function text(answer: Answer, key: string): string | undefined {
  const value = answer[key];
  return typeof value === 'string' && value !== '' ? value : undefined;
}

export function details(method: string, answer: Answer): Record<string, unknown> {
  return { channel: 'alipay', method, code: answer.code, msg: answer.msg, sub_code: answer.sub_code, sub_msg: answer.sub_msg };
}

export function refused(method: string, answer: Answer): AppError {
  return new AppError('channel_refused', { message: `Alipay refused ${method}: ${answer.sub_msg ?? answer.msg ?? answer.code}`, details: details(method, answer) });
}

/** A subject cut to Alipay's limit by characters, never inside one. */
export function subjectOf(subject: string): string {
  return [...subject].slice(0, MAX_SUBJECT_CHARS).join('');
}

/**
 * 直付通: the secondary merchant (smid) the trade's money is for, and its settlement, which Alipay
 * requires with it ("直付通场景下必传"): the whole amount to the smid's own settlement account
 * (defaultSettle). A trade of the platform's own goods (自营) carries neither.
 */
export function subMerchantFields(subMerchantId: string | undefined, amount_fen: number): Record<string, unknown> {
  if (subMerchantId === undefined) return {};
  return {
    sub_merchant: { merchant_id: subMerchantId },
    settle_info: { settle_detail_infos: [{ trans_in_type: 'defaultSettle', amount: fenToYuan(amount_fen) }] },
  };
}
