import { parseArgs } from 'node:util';
import { createApp } from './app.ts';
import { seedDemoData } from './demo/seed.ts';
import { loadConfig } from './platform/config.ts';
import { dialectOfUrl, openDatabase } from './platform/db/database.ts';
import { migrateToLatest } from './platform/db/migrate.ts';
import { ROLES, signToken, type Role } from './platform/http/tokens.ts';
import { startHttp } from './http.ts';

const USAGE = `usage: tuangou <command>
  start     serve the API (PORT, default 3000); on the embedded SQLite default it also
            migrates and loads demo data. --no-demo skips the demo data.
  migrate   run the database migrations on DATABASE_URL and every ORDER_SHARD_URLS entry
  seed      load the demo data (only into an empty catalog)
  token     print a bearer token: --role buyer|merchant|leader|admin --subject ID
environment: DATABASE_URL (sqlite:./data/tuangou.db | postgres://… | mysql://…), ORDER_SHARD_URLS,
  PORT, HOST, TOKEN_SECRET, ORDER_PAYMENT_TIMEOUT_MS, LOG_LEVEL`;

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  const config = loadConfig();
  switch (command) {
    case 'start': {
      const { values } = parseArgs({ args: rest, options: { 'no-demo': { type: 'boolean' }, migrate: { type: 'boolean' } } });
      const embedded = dialectOfUrl(config.databaseUrl) === 'sqlite';
      const app = await createApp(config, { migrate: embedded || values.migrate === true });
      const demo = embedded && !values['no-demo'] ? await seedDemoData(app.db, app.now()) : undefined;
      const { url } = await startHttp(app);
      printWelcome(url, config.tokenSecret, demo);
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
