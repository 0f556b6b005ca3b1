import type { FastifyInstance } from 'fastify';
import type { ChannelName } from '../../payments/channels/types.ts';
import type { SandboxCore } from './core.ts';

/** The sandbox's HTTP server. Every request body arrives as the raw string, since signatures cover raw bytes. */
export type SandboxServer = FastifyInstance;

/**
 * One channel's side of the sandbox: its key material (both parties' keys, made fresh for a
 * sandbox), the settings our adapter needs to talk to it, and its protocol routes.
 */
export interface SandboxChannelModule<Keys, Settings> {
  name: ChannelName;
  /** Fresh keys for both parties; JSON-serializable, so `tuangou sandbox` and `tuangou start` can share a file. */
  generateKeys(): Keys;
  /** What our adapter is configured with to talk to this sandbox at sandboxUrl. */
  settingsFor(keys: Keys, sandboxUrl: string): Settings;
  /** Registers the channel's protocol routes and its notifier. base() is the sandbox's URL once it listens. */
  register(server: SandboxServer, core: SandboxCore, keys: Keys, base: () => string): void;
}

/** Where the cashier page of a trade is: QR codes and redirects of every channel point here. */
export function cashierUrl(base: string, channel: ChannelName, payNo: string): string {
  return `${base}/sandbox/cashier/${channel}/${encodeURIComponent(payNo)}`;
}
