import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { channelSource } from '../src/channel-setup.ts';
import { loadConfig } from '../src/platform/config.ts';
import { openDatabase } from '../src/platform/db/database.ts';

/**
 * What a deployment gets wrong before the first request: the token secret, the channels, and
 * who may read the files. Refused at start with a message that says what to set.
 */
const dirs: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'tuangou-startup-'));
  dirs.push(dir);
  return dir;
};
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const PG = 'postgres://postgres@127.0.0.1:5432/tuangou';
const SECRET = 'x'.repeat(32);
const mode = (path: string) => statSync(path).mode & 0o777;

describe('the token secret', () => {
  it('an empty TOKEN_SECRET (a template with the variable missing) is refused, as is one under 32 bytes', () => {
    const dataDir = tempDir();
    expect(() => loadConfig({ TUANGOU_DATA_DIR: dataDir, TOKEN_SECRET: '' })).toThrow(/TOKEN_SECRET must be at least 32 bytes/);
    expect(() => loadConfig({ TUANGOU_DATA_DIR: dataDir, TOKEN_SECRET: 'x'.repeat(31) })).toThrow(/at least 32 bytes/);
    expect(loadConfig({ TUANGOU_DATA_DIR: dataDir, TOKEN_SECRET: SECRET }).tokenSecret).toBe(SECRET);
  });

  it('a development secret is made only on the embedded SQLite default; a server database requires TOKEN_SECRET', () => {
    const dataDir = tempDir();
    expect(() => loadConfig({ TUANGOU_DATA_DIR: dataDir, DATABASE_URL: PG })).toThrow(/TOKEN_SECRET is required/);
    const embedded = loadConfig({ TUANGOU_DATA_DIR: join(dataDir, 'data') });
    expect(Buffer.byteLength(embedded.tokenSecret)).toBeGreaterThanOrEqual(32);
    expect(mode(join(dataDir, 'data'))).toBe(0o700);
    expect(mode(join(dataDir, 'data', 'dev-token-secret'))).toBe(0o600);
  });

  it('secrets being rotated out must be keys too', () => {
    expect(loadConfig({ TUANGOU_DATA_DIR: tempDir(), TOKEN_SECRET: SECRET, TOKEN_PREVIOUS_SECRETS: `${'y'.repeat(32)}, ${'z'.repeat(40)}` }).previousTokenSecrets).toEqual(['y'.repeat(32), 'z'.repeat(40)]);
    expect(() => loadConfig({ TUANGOU_DATA_DIR: tempDir(), TOKEN_SECRET: SECRET, TOKEN_PREVIOUS_SECRETS: 'short' })).toThrow(/TOKEN_PREVIOUS_SECRETS/);
  });
});

describe('the channel sandbox', () => {
  const config = (url?: string) => loadConfig({ TUANGOU_DATA_DIR: tempDir(), TOKEN_SECRET: SECRET, ...(url && { DATABASE_URL: url }) });

  it('runs in-process only on the embedded default or when asked for', () => {
    expect(channelSource(config(), {}, 'start')).toEqual({ kind: 'in-process-sandbox' });
    expect(channelSource(config(PG), { TUANGOU_SANDBOX: '1' }, 'start')).toEqual({ kind: 'in-process-sandbox' });
    expect(channelSource(config(PG), { SANDBOX_URL: 'http://127.0.0.1:3100' }, 'start')).toEqual({ kind: 'external-sandbox', url: 'http://127.0.0.1:3100' });
  });

  it('a production database with no channel configured does not start', () => {
    expect(() => channelSource(config(PG), {}, 'start')).toThrow(/no payment channel is configured/);
    expect(() => channelSource(config('mysql://root@127.0.0.1:3306/x'), {}, 'worker')).toThrow(/no payment channel is configured/);
  });

  it('`tuangou start` with HOST=0.0.0.0 serves the API there but the sandbox on loopback, and prints no token into a pipe', async () => {
    const dataDir = tempDir();
    const out = await runCli(['start', '--no-worker'], { TUANGOU_DATA_DIR: dataDir, HOST: '0.0.0.0', PORT: '0', LOG_LEVEL: 'silent' }, /payment channels: the sandbox at (\S+)/);
    expect(out.match).toBeDefined();
    expect(out.match![1]).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(out.stdout).toContain('tuangou is serving at http://0.0.0.0:');
    expect(out.stdout).not.toMatch(/eyJ[A-Za-z0-9_-]+\.eyJ/); // no JWS in the log
    expect(out.stdout).toContain('--print-tokens');
  });

  it('`tuangou start` on PostgreSQL with no channel configured exits with the message', async () => {
    const out = await runCli(['start'], { TUANGOU_DATA_DIR: tempDir(), DATABASE_URL: PG, TOKEN_SECRET: SECRET, LOG_LEVEL: 'silent' });
    expect(out.code).toBe(1);
    expect(out.stderr).toMatch(/no payment channel is configured/);
  });

  it('`tuangou start` on PostgreSQL without TOKEN_SECRET exits with the message', async () => {
    const out = await runCli(['start'], { TUANGOU_DATA_DIR: tempDir(), DATABASE_URL: PG, LOG_LEVEL: 'silent' });
    expect(out.code).toBe(1);
    expect(out.stderr).toMatch(/TOKEN_SECRET is required/);
  });
});

describe('files on disk', () => {
  it('the SQLite file, its WAL and its folder are the owner’s only, also when an older version left them open', async () => {
    const root = tempDir();
    const folder = join(root, 'data');
    mkdirSync(folder, { mode: 0o755 });
    chmodSync(folder, 0o755);
    const db = await openDatabase(`sqlite:${join(folder, 'tuangou.db')}`);
    await sql`create table t (x integer)`.execute(db);
    await sql`insert into t values (1)`.execute(db);
    expect(mode(folder)).toBe(0o700);
    expect(mode(join(folder, 'tuangou.db'))).toBe(0o600);
    expect(mode(join(folder, 'tuangou.db-wal'))).toBe(0o600);
    await db.destroy();
    chmodSync(join(folder, 'tuangou.db'), 0o644);
    const again = await openDatabase(`sqlite:${join(folder, 'tuangou.db')}`);
    expect(mode(join(folder, 'tuangou.db'))).toBe(0o600);
    await again.destroy();
  });
});

/** Runs the CLI from source; resolves when it exits, or (with `until`) when stdout matches, killing it. */
function runCli(args: string[], env: Record<string, string>, until?: RegExp): Promise<{ code: number | null; stdout: string; stderr: string; match?: RegExpMatchArray }> {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(DATABASE_URL|ORDER_SHARD_URLS|TOKEN_SECRET|SANDBOX_URL|TUANGOU_SANDBOX|REDIS_URL|NATS_URL|HOST|PORT|ALIPAY_|WECHATPAY_|UNIONPAY_|CCB_)/.test(k)));
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], { env: { ...clean, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`tuangou ${args.join(' ')} did not finish: ${stdout}${stderr}`));
    }, 60_000);
    child.stdout.on('data', (d) => {
      stdout += d;
      const match = until && stdout.match(until);
      if (match) {
        clearTimeout(timer);
        child.kill('SIGKILL');
        resolve({ code: null, stdout, stderr, match });
      }
    });
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
