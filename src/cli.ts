import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createApp, eventConsumerNames } from './app.ts';
import { brokerSettings } from './events/transport.ts';
import { seedDemoData } from './tools/demo/seed.ts';
import { loadConfig } from './platform/config.ts';
import { dialectOfUrl, openDatabase, type AnyDb } from './platform/db/database.ts';
import { migrateDatabases } from './migrations.ts';
import { defaultTtl_s, ROLES, signToken, type Role } from './platform/http/tokens.ts';
import { startHttp } from './http.ts';
import { channelSetup, SANDBOX_HOST } from './channel-setup.ts';
import { CHANNELS, reconcile, type ChannelName } from './payments/index.ts';
import { sandboxKeysIn, startChannelSandbox } from './tools/sandbox/index.ts';

/** The sandbox's port for `tuangou sandbox` when SANDBOX_PORT is not set. */
const DEFAULT_SANDBOX_PORT = 3100;

const USAGE = `usage: tuangou <command>
  start     serve the API (PORT, default 3000) and do the background work (event relay,
            consumers, jobs) in the same process; on the embedded SQLite default it also
            migrates and loads demo data. --no-demo skips the demo data. --no-worker (or
            TUANGOU_NO_WORKER=1) serves the API only, for running \`worker\` processes beside it.
            --print-tokens prints the demo tokens even when the output is not a terminal.
  worker    the background work without HTTP: relay the outbox (to NATS when NATS_URL is set),
            run the event consumers and the due jobs. Run as many as you like on one database.
  migrate   run the database migrations on DATABASE_URL and every ORDER_SHARD_URLS entry; with
            NATS_URL, also create or update the JetStream stream and the durable consumers
  seed      load the demo data (only into an empty catalog)
  token     print a bearer token: --role buyer|merchant|leader|admin --subject ID [--ttl SECONDS]
            (default 30 days, admin 12 hours; revoke with POST /admin/token-revocations)
  sandbox   run the payment channel sandbox (Alipay, WeChat Pay, UnionPay, CCB) on SANDBOX_PORT
            (default ${DEFAULT_SANDBOX_PORT}); point \`start\` at it with SANDBOX_URL
  reconcile --channel alipay|wechat|unionpay|ccb --date YYYY-MM-DD [--file BILL]
            对账: match the channel's bill for the day (downloaded, or read from BILL) against
            our payments and refunds; print and store every difference
environment: DATABASE_URL (sqlite:./data/tuangou.db | postgres://… | mysql://…), ORDER_SHARD_URLS,
  PORT, HOST, PUBLIC_URL, TOKEN_SECRET (≥ 32 bytes; required off SQLite), TOKEN_PREVIOUS_SECRETS, ORDER_PAYMENT_TIMEOUT_MS, LOG_LEVEL, REDIS_URL,
  NATS_URL (nats://…; unset: the in-process bus), NATS_STREAM, NATS_SUBJECT_PREFIX,
  payment channels: ALIPAY_*, WECHATPAY_*, UNIONPAY_*, CCB_* (docs/channels/); with none set,
  \`start\` on SQLite (or with TUANGOU_SANDBOX=1) runs the sandbox in-process on loopback
  (SANDBOX_PORT), or uses SANDBOX_URL for one already running; on PostgreSQL/MySQL it refuses`;

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  const config = loadConfig();
  switch (command) {
    case 'start': {
      const { values } = parseArgs({ args: rest, options: { 'no-demo': { type: 'boolean' }, migrate: { type: 'boolean' }, 'no-worker': { type: 'boolean' }, 'print-tokens': { type: 'boolean' } } });
      const embedded = dialectOfUrl(config.databaseUrl) === 'sqlite';
      const channels = await channelSetup(config, process.env, 'start');
      const worker = !(values['no-worker'] === true || process.env.TUANGOU_NO_WORKER === '1');
      const app = await createApp(config, { migrate: embedded || values.migrate === true, channels: channels.settings, worker });
      const demo = embedded && !values['no-demo'] ? await seedDemoData(app.db, app.now()) : undefined;
      const { url } = await startHttp(app);
      // Tokens go to a person at a terminal, never into a log collector (unless asked).
      const printTokens = values['print-tokens'] === true || process.stdout.isTTY === true;
      printWelcome(url, printTokens ? config.tokenSecret : undefined, demo);
      console.log(channels.note);
      return;
    }
    case 'worker': {
      const channels = await channelSetup(config, process.env, 'worker');
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
      const sandbox = await startChannelSandbox({
        keys: sandboxKeysIn(config.dataDir),
        host: process.env.SANDBOX_HOST || SANDBOX_HOST,
        port: config.sandboxPort ?? DEFAULT_SANDBOX_PORT,
        // Tests compress the channels' notification retry schedules (0.01: WeChat's 15 s is 150 ms).
        ...(process.env.SANDBOX_RETRY_SCALE && { core: { retryScale: Number(process.env.SANDBOX_RETRY_SCALE) } }),
      });
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
      const channels = await channelSetup(config, process.env, 'reconcile');
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
      const byUrl = new Map<string, AnyDb>();
      for (const url of [config.databaseUrl, ...config.orderShardUrls]) if (!byUrl.has(url)) byUrl.set(url, await openDatabase(url));
      try {
        const applied = await migrateDatabases(byUrl.get(config.databaseUrl)!, config.orderShardUrls.map((url) => byUrl.get(url)!));
        for (const [url, db] of byUrl) {
          const names = applied.get(db) ?? [];
          console.log(`${redact(url)}: ${names.length ? `applied ${names.join(', ')}` : 'up to date'}`);
        }
      } finally {
        for (const db of byUrl.values()) await db.destroy();
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
      await migrateDatabases(db, config.orderShardUrls.includes(config.databaseUrl) ? [db] : []);
      const demo = await seedDemoData(db, Date.now());
      console.log(demo.created ? 'demo data loaded' : 'the catalog already has data; nothing loaded');
      await db.destroy();
      return;
    }
    case 'token': {
      const { values } = parseArgs({ args: rest, options: { role: { type: 'string' }, subject: { type: 'string' }, ttl: { type: 'string' } } });
      const role = values.role as Role;
      if (!ROLES.includes(role) || !values.subject) throw new Error(`token needs --role (${ROLES.join('|')}) and --subject`);
      const ttl_s = values.ttl === undefined ? defaultTtl_s(role) : Number(values.ttl);
      console.log(signToken(config.tokenSecret, { role, subject: values.subject }, Date.now(), ttl_s));
      return;
    }
    default:
      console.log(USAGE);
      if (command && command !== 'help' && command !== '--help') process.exitCode = 2;
  }
}

function redact(url: string): string {
  return url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@');
}

function printWelcome(url: string, secret: string | undefined, demo: Awaited<ReturnType<typeof seedDemoData>> | undefined): void {
  const now = Date.now();
  const lines = [``, `tuangou is serving at ${url}`, `  OpenAPI docs:   ${url}/docs`, `  activities:     ${url}/activities`];
  if (demo && !secret) {
    lines.push(``, `tokens: \`npx tuangou token --role buyer --subject 1\` (not printed: this output is not a terminal; --print-tokens prints them)`);
  }
  if (demo && secret) {
    lines.push(``, `demo tokens (buyers valid 30 days, admin 12 hours):`);
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
