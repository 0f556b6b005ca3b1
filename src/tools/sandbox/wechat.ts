import { DEFAULT_WECHAT_TIMEOUT_MS, type WechatSettings } from '../../payments/channels/wechat.ts';
import type { SandboxCore } from './core.ts';
import type { SandboxChannelModule, SandboxServer } from './module.ts';
import type { MerchantIds } from './wechat/bodies.ts';
import { routeMaker } from './wechat/http.ts';
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
  certificateRoutes(context);
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
    };
  },
  register,
};
