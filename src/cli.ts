import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createApp, eventConsumerNames } from './app.ts';
import { brokerSettings } from './events/transport.ts';
import { seedDemoData } from './demo/seed.ts';
import { loadConfig } from './platform/config.ts';
import { dialectOfUrl, openDatabase } from './platform/db/database.ts';
import { migrateToLatest } from './platform/db/migrate.ts';
import { ROLES, signToken, type Role } from './platform/http/tokens.ts';
import { startHttp } from './http.ts';
import { channelSettingsFromEnv, CHANNELS, reconcile, type ChannelName, type ChannelSettings } from './payments/index.ts';
import type { Config } from './platform/config.ts';
import { channelSettingsForSandbox, sandboxKeysIn, startChannelSandbox, type SandboxHandle } from './sandbox/index.ts';

/** The sandbox's port for `tuangou sandbox` when SANDBOX_PORT is not set. */
const DEFAULT_SANDBOX_PORT = 3100;

const USAGE = `usage: tuangou <command>
  start     serve the API (PORT, default 3000) and do the background work (event relay,
            consumers, jobs) in the same process; on the embedded SQLite default it also
            migrates and loads demo data. --no-demo skips the demo data. --no-worker (or
            TUANGOU_NO_WORKER=1) serves the API only, for running \`worker\` processes beside it.
  worker    the background work without HTTP: relay the outbox (to NATS when NATS_URL is set),
            run the event consumers and the due jobs. Run as many as you like on one database.
  migrate   run the database migrations on DATABASE_URL and every ORDER_SHARD_URLS entry; with
            NATS_URL, also create or update the JetStream stream and the durable consumers
  seed      load the demo data (only into an empty catalog)
  token     print a bearer token: --role buyer|merchant|leader|admin --subject ID
  sandbox   run the payment channel sandbox (Alipay, WeChat Pay, UnionPay, CCB) on SANDBOX_PORT
            (default ${DEFAULT_SANDBOX_PORT}); point \`start\` at it with SANDBOX_URL
  reconcile --channel alipay|wechat|unionpay|ccb --date YYYY-MM-DD [--file BILL]
            对账: match the channel's bill for the day (downloaded, or read from BILL) against
            our payments and refunds; print and store every difference
environment: DATABASE_URL (sqlite:./data/tuangou.db | postgres://… | mysql://…), ORDER_SHARD_URLS,
  PORT, HOST, PUBLIC_URL, TOKEN_SECRET, ORDER_PAYMENT_TIMEOUT_MS, LOG_LEVEL, REDIS_URL,
  NATS_URL (nats://…; unset: the in-process bus), NATS_STREAM, NATS_SUBJECT_PREFIX,
  payment channels: ALIPAY_*, WECHATPAY_*, UNIONPAY_*, CCB_* (docs/channels/); with none set,
  \`start\` runs the sandbox in-process (SANDBOX_PORT, or SANDBOX_URL for one already running)`;

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  const config = loadConfig();
  switch (command) {
    case 'start': {
      const { values } = parseArgs({ args: rest, options: { 'no-demo': { type: 'boolean' }, migrate: { type: 'boolean' }, 'no-worker': { type: 'boolean' } } });
      const embedded = dialectOfUrl(config.databaseUrl) === 'sqlite';
      const channels = await channelSetup(config, { startSandbox: true });
      const worker = !(values['no-worker'] === true || process.env.TUANGOU_NO_WORKER === '1');
      const app = await createApp(config, { migrate: embedded || values.migrate === true, channels: channels.settings, worker });
      const demo = embedded && !values['no-demo'] ? await seedDemoData(app.db, app.now()) : undefined;
      const { url } = await startHttp(app);
      printWelcome(url, config.tokenSecret, demo);
      console.log(channels.note);
      return;
    }
    case 'worker': {
      const channels = await channelSetup(config, { startSandbox: false });
      const app = await createApp(config, { migrate: false, channels: channels.settings, worker: true });
      console.log(`tuangou worker: events ${config.natsUrl ? `through NATS at ${redact(config.natsUrl)}` : 'in-process'}, jobs on ${app.databases.length} database(s); ${channels.note}`);
      const stop = async () => {
        await app.close();
        process.exit(0);
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      return;
    }
    case 'sandbox': {
      const sandbox = await startChannelSandbox({ keys: sandboxKeysIn(config.dataDir), host: config.host, port: config.sandboxPort ?? DEFAULT_SANDBOX_PORT });
      console.log(`payment channel sandbox (alipay, wechat, unionpay, ccb) at ${sandbox.url}\n  start the platform with SANDBOX_URL=${sandbox.url} (same TUANGOU_DATA_DIR, which holds the keys)`);
      const stop = async () => {
        await sandbox.close();
        process.exit(0);
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      return;
    }
    case 'reconcile': {
      const { values } = parseArgs({ args: rest, options: { channel: { type: 'string' }, date: { type: 'string' }, file: { type: 'string' } } });
      const channel = values.channel as ChannelName;
      if (!CHANNELS.includes(channel) || !values.date) throw new Error(`reconcile needs --channel (${CHANNELS.join('|')}) and --date YYYY-MM-DD`);
      const channels = await channelSetup(config, { startSandbox: false });
      const app = await createApp(config, { channels: channels.settings });
      try {
        const file = values.file ? new Uint8Array(readFileSync(values.file)) : undefined;
        const report = await reconcile(app.payments, { channel, date: values.date, file, source: values.file ?? 'download' });
        console.log(`run ${report.runId}: ${report.billRows} bill rows, ${report.matched} matched, ${report.differences.length} differences`);
        for (const d of report.differences) {
          console.log(`  ${d.kind.padEnd(15)} ${d.item.padEnd(7)} ${d.refundNo ?? d.payNo}  ours ${d.ours_fen ?? '-'} / channel ${d.channel_fen ?? '-'} fen  → ${d.action} (${d.actionStatus})${d.note ? `: ${d.note}` : ''}`);
        }
      } finally {
        await app.close();
      }
      return;
    }
    case 'migrate': {
      const urls = [...new Set([config.databaseUrl, ...config.orderShardUrls])];
      for (const url of urls) {
        const db = await openDatabase(url);
        const applied = await migrateToLatest(db);
        console.log(`${redact(url)}: ${applied.length ? `applied ${applied.join(', ')}` : 'up to date'}`);
        await db.destroy();
      }
      const broker = brokerSettings(config);
      if (broker) {
        const { openBroker, setupJetStream } = await import('./events/broker.ts');
        const { nc } = await openBroker(broker, 'tuangou-migrate');
        const consumers = eventConsumerNames();
        await setupJetStream(nc, broker, consumers);
        await nc.close();
        console.log(`${redact(broker.url)}: stream ${broker.stream} (${broker.subjectPrefix}.>) and ${consumers.length} durable consumers up to date`);
      }
      return;
    }
    case 'seed': {
      const db = await openDatabase(config.databaseUrl);
      await migrateToLatest(db);
      const demo = await seedDemoData(db, Date.now());
      console.log(demo.created ? 'demo data loaded' : 'the catalog already has data; nothing loaded');
      await db.destroy();
      return;
    }
    case 'token': {
      const { values } = parseArgs({ args: rest, options: { role: { type: 'string' }, subject: { type: 'string' } } });
      const role = values.role as Role;
      if (!ROLES.includes(role) || !values.subject) throw new Error(`token needs --role (${ROLES.join('|')}) and --subject`);
      console.log(signToken(config.tokenSecret, { role, subject: values.subject }, Date.now()));
      return;
    }
    default:
      console.log(USAGE);
      if (command && command !== 'help' && command !== '--help') process.exitCode = 2;
  }
}

/**
 * Real channels when any is configured by environment; otherwise the sandbox: the one at
 * SANDBOX_URL, or (for `start`) one run in this process, so the demo can pay out of the box.
 */
async function channelSetup(config: Config, options: { startSandbox: boolean }): Promise<{ settings: ChannelSettings; note: string; sandbox?: SandboxHandle }> {
  const configured = channelSettingsFromEnv(process.env);
  const names = Object.entries(configured).filter(([, v]) => v).map(([k]) => k);
  if (names.length > 0) return { settings: configured, note: `payment channels: ${names.join(', ')}` };
  const keys = sandboxKeysIn(config.dataDir);
  const external = process.env.SANDBOX_URL;
  if (external) return { settings: channelSettingsForSandbox(keys, external), note: `payment channels: the sandbox at ${external}` };
  if (!options.startSandbox) return { settings: {}, note: 'no payment channel configured (set SANDBOX_URL or the channel variables)' };
  const sandbox = await startChannelSandbox({ keys, host: config.host, port: config.sandboxPort ?? 0 });
  return {
    settings: channelSettingsForSandbox(keys, sandbox.url),
    note: `payment channels: the sandbox at ${sandbox.url} (cashier pages under ${sandbox.url}/sandbox/cashier/…)`,
    sandbox,
  };
}

function redact(url: string): string {
  return url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@');
}

function printWelcome(url: string, secret: string, demo: Awaited<ReturnType<typeof seedDemoData>> | undefined): void {
  const now = Date.now();
  const lines = [``, `tuangou is serving at ${url}`, `  OpenAPI docs:   ${url}/docs`, `  activities:     ${url}/activities`];
  if (demo) {
    lines.push(``, `demo tokens (valid 30 days):`);
    for (const buyer of demo.buyers.slice(0, 2)) {
      lines.push(`  buyer ${buyer.id} (${buyer.name}): ${signToken(secret, { role: 'buyer', subject: String(buyer.id) }, now)}`);
    }
    lines.push(`  admin: ${signToken(secret, { role: 'admin', subject: 'admin' }, now)}`);
    lines.push(``, `pickup points (leaderId): ${demo.leaders.map((l) => `${l.id} ${l.name}`).join('; ')}`);
  }
  console.log(lines.join('\n'));
}

main(process.argv.slice(2)).catch((error) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
