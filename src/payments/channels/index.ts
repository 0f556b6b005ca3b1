import { alipayChannel, alipaySettingsFromEnv, type AlipaySettings } from './alipay.ts';
import { ccbChannel, ccbSettingsFromEnv, type CcbSettings } from './ccb.ts';
import type { ChannelName, PaymentChannel } from './types.ts';
import { unionpayChannel, unionpaySettingsFromEnv, type UnionpaySettings } from './unionpay.ts';
import { wechatChannel, wechatSettingsFromEnv, type WechatSettings } from './wechat.ts';

export * from './types.ts';

/** Each configured channel's settings; a channel without settings is not offered. */
export interface ChannelSettings {
  alipay?: AlipaySettings;
  wechat?: WechatSettings;
  unionpay?: UnionpaySettings;
  ccb?: CcbSettings;
}

/** Channels configured by environment variables (ALIPAY_*, WECHATPAY_*, UNIONPAY_*, CCB_*). */
export function channelSettingsFromEnv(env: NodeJS.ProcessEnv): ChannelSettings {
  return {
    alipay: alipaySettingsFromEnv(env),
    wechat: wechatSettingsFromEnv(env),
    unionpay: unionpaySettingsFromEnv(env),
    ccb: ccbSettingsFromEnv(env),
  };
}

export function createChannels(settings: ChannelSettings, now: () => number): Map<ChannelName, PaymentChannel> {
  const channels = new Map<ChannelName, PaymentChannel>();
  if (settings.alipay) channels.set('alipay', alipayChannel(settings.alipay, now));
  if (settings.wechat) channels.set('wechat', wechatChannel(settings.wechat, now));
  if (settings.unionpay) channels.set('unionpay', unionpayChannel(settings.unionpay, now));
  if (settings.ccb) channels.set('ccb', ccbChannel(settings.ccb, now));
  return channels;
}
