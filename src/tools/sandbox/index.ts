import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensurePrivateDir } from '../../platform/files.ts';
import type { ChannelSettings } from '../../payments/channels/index.ts';
import { alipaySandbox, type AlipaySandboxKeys } from './alipay.ts';
import { ccbSandbox, type CcbSandboxKeys } from './ccb.ts';
import type { SandboxCoreOptions } from './core.ts';
import { startSandbox, type SandboxHandle } from './server.ts';
import { unionpaySandbox, type UnionpaySandboxKeys } from './unionpay.ts';
import { wechatSandbox, type WechatSandboxKeys } from './wechat.ts';

export type { BillEdit, BillRow } from './bills.ts';
export { SandboxCore } from './core.ts';
export type { Faults } from './faults.ts';
export type { SandboxHandle } from './server.ts';

/** Both parties' keys for every channel the sandbox plays. */
export interface SandboxKeys {
  alipay: AlipaySandboxKeys;
  wechat: WechatSandboxKeys;
  unionpay: UnionpaySandboxKeys;
  ccb: CcbSandboxKeys;
}

export function generateSandboxKeys(): SandboxKeys {
  return {
    alipay: alipaySandbox.generateKeys(),
    wechat: wechatSandbox.generateKeys(),
    unionpay: unionpaySandbox.generateKeys(),
    ccb: ccbSandbox.generateKeys(),
  };
}

/**
 * The sandbox keys kept in the data folder, made on first use, so a `tuangou sandbox` and a
 * `tuangou start` on the same folder trust each other across restarts.
 */
export function sandboxKeysIn(dataDir: string): SandboxKeys {
  const file = join(dataDir, 'sandbox-keys.json');
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as SandboxKeys;
  const keys = generateSandboxKeys();
  ensurePrivateDir(dataDir);
  writeFileSync(file, JSON.stringify(keys, null, 2) + '\n', { mode: 0o600 });
  return keys;
}

/** Our adapters' settings for talking to a sandbox at sandboxUrl. */
export function channelSettingsForSandbox(keys: SandboxKeys, sandboxUrl: string): ChannelSettings {
  return {
    alipay: alipaySandbox.settingsFor(keys.alipay, sandboxUrl),
    wechat: wechatSandbox.settingsFor(keys.wechat, sandboxUrl),
    unionpay: unionpaySandbox.settingsFor(keys.unionpay, sandboxUrl),
    ccb: ccbSandbox.settingsFor(keys.ccb, sandboxUrl),
  };
}

export function startChannelSandbox(options: { keys: SandboxKeys; host?: string; port?: number; core?: SandboxCoreOptions }): Promise<SandboxHandle> {
  return startSandbox({
    host: options.host,
    port: options.port,
    core: options.core,
    modules: [
      { module: alipaySandbox, keys: options.keys.alipay },
      { module: wechatSandbox, keys: options.keys.wechat },
      { module: unionpaySandbox, keys: options.keys.unionpay },
      { module: ccbSandbox, keys: options.keys.ccb },
    ],
  });
}
