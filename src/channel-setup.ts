import { channelSettingsFromEnv, type ChannelSettings } from './payments/index.ts';
import type { Config } from './platform/config.ts';
import { dialectOfUrl } from './platform/db/database.ts';
import { channelSettingsForSandbox, sandboxKeysIn, startChannelSandbox, type SandboxHandle } from './tools/sandbox/index.ts';

/** The in-process sandbox listens here whatever HOST says: whoever reaches it can mark any order paid. */
export const SANDBOX_HOST = '127.0.0.1';

export type ChannelSource =
  | { kind: 'configured'; names: string[] }
  | { kind: 'external-sandbox'; url: string }
  | { kind: 'in-process-sandbox' }
  | { kind: 'none' };

/**
 * Where the payment channels come from, for a command that `serves` (start) or only works
 * (worker, reconcile): real channels when any is configured; otherwise the sandbox at
 * SANDBOX_URL; otherwise, for `start`, a sandbox in this process, but only on the embedded
 * default or when asked for (TUANGOU_SANDBOX=1). A server database with none of these is a
 * deployment that forgot its channels: refused with a message saying what to set.
 */
export function channelSource(config: Config, env: NodeJS.ProcessEnv, command: 'start' | 'worker' | 'reconcile'): ChannelSource {
  const configured = channelSettingsFromEnv(env);
  const names = Object.entries(configured).filter(([, v]) => v).map(([name]) => name);
  if (names.length > 0) return { kind: 'configured', names };
  if (env.SANDBOX_URL) return { kind: 'external-sandbox', url: env.SANDBOX_URL };
  const embedded = dialectOfUrl(config.databaseUrl) === 'sqlite';
  const asked = env.TUANGOU_SANDBOX === '1';
  if (command === 'start' && (embedded || asked)) return { kind: 'in-process-sandbox' };
  if (embedded || asked) return { kind: 'none' };
  throw new Error(
    'no payment channel is configured for this database: set the channel variables (ALIPAY_*, WECHATPAY_*, UNIONPAY_*, CCB_*; docs/channels/), ' +
      'or SANDBOX_URL for a sandbox run with `tuangou sandbox`, or TUANGOU_SANDBOX=1 to play the channels in this process (development only)',
  );
}

export async function channelSetup(config: Config, env: NodeJS.ProcessEnv, command: 'start' | 'worker' | 'reconcile'): Promise<{ settings: ChannelSettings; note: string; sandbox?: SandboxHandle }> {
  const source = channelSource(config, env, command);
  switch (source.kind) {
    case 'configured':
      return { settings: channelSettingsFromEnv(env), note: `payment channels: ${source.names.join(', ')}` };
    case 'external-sandbox':
      return { settings: channelSettingsForSandbox(sandboxKeysIn(config.dataDir), source.url), note: `payment channels: the sandbox at ${source.url}` };
    case 'none':
      return { settings: {}, note: 'no payment channel configured (set SANDBOX_URL or the channel variables)' };
    case 'in-process-sandbox': {
      const keys = sandboxKeysIn(config.dataDir);
      const sandbox = await startChannelSandbox({ keys, host: SANDBOX_HOST, port: config.sandboxPort ?? 0 });
      return {
        settings: channelSettingsForSandbox(keys, sandbox.url),
        note: `payment channels: the sandbox at ${sandbox.url} (cashier pages under ${sandbox.url}/sandbox/cashier/…; loopback only)`,
        sandbox,
      };
    }
  }
}
