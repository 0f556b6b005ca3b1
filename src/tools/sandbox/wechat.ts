import { createHash } from 'node:crypto';
import { DEFAULT_WECHAT_TIMEOUT_MS, type WechatSettings } from '../../payments/channels/wechat.ts';
import type { SandboxCore } from './core.ts';
import type { SandboxChannelModule, SandboxServer } from './module.ts';
import type { MerchantIds } from './wechat/bodies.ts';
import { combinedRoutes, ecommerceRefundRoutes } from './wechat/combined.ts';
import { routeMaker } from './wechat/http.ts';
import { partnerRoutes } from './wechat/partner.ts';
import { generateWechatKeys, type WechatSandboxKeys } from './wechat/keys.ts';
import { wechatNotifier } from './wechat/notifier.ts';
import { billRoutes, certificateRoutes, queryAndCloseRoutes, refundRoutes, tradeRoutes, type RouteContext } from './wechat/routes.ts';
import { merchantIdentity, platformSigner } from './wechat/signing.ts';

export type { WechatSandboxKeys } from './wechat/keys.ts';

/**
 * WeChat Pay API v3 played locally under `{sandbox}/wechat/v3/…`: the merchant's Authorization
 * is checked on every request, every answer is signed with the platform key, errors come as
 * `{code, message}` with WeChat's statuses, notifications go out sealed and signed.
 */

function register(server: SandboxServer, core: SandboxCore, keys: WechatSandboxKeys, base: () => string): void {
  const ids: MerchantIds = { appId: keys.appId, mchId: keys.mchId };
  const merchant = merchantIdentity(keys.mchId, keys.merchant.serialNo, keys.merchant.publicKeyPem);
  const signer = platformSigner(keys.platform[0]!.serial, keys.platform[0]!.privateKeyPem);
  core.registerNotifier('wechat', wechatNotifier(core, ids, keys.apiV3Key, signer));
  const context: RouteContext = { server, core, keys, ids, merchant, signer, base, route: routeMaker(server, core, merchant, signer) };
  tradeRoutes(context);
  queryAndCloseRoutes(context);
  refundRoutes(context);
  billRoutes(context);
  combinedRoutes(context);
  ecommerceRefundRoutes(context);
  partnerRoutes(context);
  certificateRoutes(context);
}

/**
 * The 二级商户号 the sandbox gives the platform's own store (自营), made from the platform's mchid
 * so that key files made before combined payments keep working: ten digits, never the mchid itself.
 */
export function selfOperatedSubMchId(mchId: string): string {
  const digits = BigInt('0x' + createHash('sha256').update(`self-operated:${mchId}`).digest('hex').slice(0, 12)).toString().padStart(9, '0').slice(-9);
  const id = `1${digits}`;
  return id === mchId ? `2${digits}` : id;
}

export const wechatSandbox: SandboxChannelModule<WechatSandboxKeys, WechatSettings> = {
  name: 'wechat',
  generateKeys: generateWechatKeys,
  settingsFor(keys, sandboxUrl) {
    return {
      mchId: keys.mchId,
      appId: keys.appId,
      merchantSerialNo: keys.merchant.serialNo,
      merchantPrivateKeyPem: keys.merchant.privateKeyPem,
      apiV3Key: keys.apiV3Key,
      platformKeys: keys.platform.map(({ serial, publicKeyPem }) => ({ serial, publicKeyPem })),
      baseUrl: `${sandboxUrl}/wechat`,
      timeout_ms: DEFAULT_WECHAT_TIMEOUT_MS,
      selfOperatedSubMchId: selfOperatedSubMchId(keys.mchId),
    };
  },
  register,
};
