/** What the benchmarks share: a seeded activity, the server as a child process, a load loop. */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Pool } from 'undici';
import { createMerchant, createProduct, insertActivity } from '../src/catalog/index.ts';
import { createStock } from '../src/inventory/index.ts';
import { createLeader } from '../src/leaders/index.ts';
import { openDatabase } from '../src/platform/db/database.ts';
import { migrateDatabases } from '../src/migrations.ts';
import { transact } from '../src/platform/db/retry.ts';
import { ignoreDuplicates } from '../src/platform/db/sql.ts';
import { availableEngines, type Engine } from '../test/support/engines.ts';

export const SECRET = 'bench-secret-of-the-benchmarks-32b';
export const PORT = 3900 + Math.floor(Math.random() * 50);

export interface Run {
  what: string;
  concurrency: number;
  ok: number;
  failed: number;
  seconds: number;
  latencies_ms: number[];
}

export const pct = (sorted: number[], p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]! : NaN);

/** One open activity with one SKU of `stock` units and no purchase limit; `hot` serves it from Redis (秒杀). */
export async function seed(url: string, stock = 100_000_000, options: { hot?: boolean; buyers?: number } = {}): Promise<{ activitySkuId: number; leaderId: number; activityId: number }> {
  const db = await openDatabase(url);
  await migrateDatabases(db, [db]);
  const now = Date.now();
  // The tokens name buyers 1..N; the platform takes orders only from buyers it knows.
  const buyers = Math.max(options.buyers ?? 0, Number(process.env.BUYERS ?? 0), BENCH_BUYERS);
  for (let from = 1; from <= buyers; from += BUYER_BATCH) {
    const ids = Array.from({ length: Math.min(BUYER_BATCH, buyers - from + 1) }, (_, i) => from + i);
    await db.insertInto('buyers').values(ids.map((id) => ({ id, name: `Bench buyer ${id}`, member_level: 0, created_at_ms: now }))).$call(ignoreDuplicates(db)).execute();
  }
  const merchant = await createMerchant(db, { name: 'Bench Farm' }, now);
  const leader = await createLeader(db, { name: 'Bench Leader', community: 'Bench', address: 'Gate' }, now);
  const product = await createProduct(db, { merchantId: merchant.id, title: 'Rice', category: null, skus: [{ title: '5kg', listPrice_fen: 4990, weight_g: 5000 }] }, now);
  const activitySkuId = await transact(db, async (trx) => {
    const a = await insertActivity(
      trx,
      { title: 'Bench', starts_at_ms: now - 60_000, ends_at_ms: now + 86_400_000, order_cutoff_at_ms: now + 86_400_000, pickupDate: '2026-12-31', inventoryMode: 'on_order', hot: options.hot ?? false },
      [{ skuId: product.skus[0]!.id, price_fen: 990, purchaseLimit: null }],
      now,
    );
    await createStock(trx, a.skus[0]!.id, stock, now);
    return { activitySkuId: a.skus[0]!.id, activityId: a.activity.id };
  });
  await db.destroy();
  return { ...activitySkuId, leaderId: leader.id };
}

/** Buyers every seed registers (the most any benchmark's tokens name by default). */
const BENCH_BUYERS = 10_000;
const BUYER_BATCH = 500;
/** A benchmark measures throughput: the per-buyer checkout limits are set out of its way. */
const UNLIMITED_CHECKOUTS = { CHECKOUT_RATE_LIMIT: '1000000000', CHECKOUT_MAX_OPEN_ORDERS_PER_BUYER: '1000000000', CHECKOUT_MAX_UNPAID_UNITS_PER_SKU: '1000000000' };

/**
 * `env` adds to the server's environment (REDIS_URL for the flash-sale path). With `worker`, the
 * server runs the API only (--no-worker) and a second process (`tuangou worker`) runs the relay,
 * the jobs and the event consumers — the deployment the README describes past one process.
 * Without channels the sandbox plays them in-process (TUANGOU_SANDBOX=1), also on a server database.
 */
export async function startServer(url: string, env: Record<string, string> = {}, options: { worker?: boolean } = {}): Promise<ChildProcess> {
  if (options.worker) {
    const worker = spawn(process.execPath, ['dist/cli.mjs', 'worker'], {
      env: { ...process.env, DATABASE_URL: url, ORDER_SHARD_URLS: '', TOKEN_SECRET: SECRET, TUANGOU_SANDBOX: '1', LOG_LEVEL: 'silent', ORDER_PAYMENT_TIMEOUT_MS: '3600000', ...UNLIMITED_CHECKOUTS, ...env },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    process.once('exit', () => worker.kill('SIGKILL'));
  }
  const args = ['dist/cli.mjs', 'start', '--no-demo', '--migrate', ...(options.worker ? ['--no-worker'] : [])];
  const child = spawn(process.execPath, [...(process.env.BENCH_NODE_ARGS?.split(' ').filter(Boolean) ?? []), ...args], {
    env: { ...process.env, DATABASE_URL: url, ORDER_SHARD_URLS: '', PORT: String(PORT), TOKEN_SECRET: SECRET, TUANGOU_SANDBOX: '1', LOG_LEVEL: 'silent', ORDER_PAYMENT_TIMEOUT_MS: '3600000', ...UNLIMITED_CHECKOUTS, ...env },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  for (let i = 0; i < 100; i++) {
    try {
      const r = await fetch(`http://127.0.0.1:${PORT}/health`);
      if (r.ok) return child;
    } catch {}
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGKILL');
  throw new Error('server did not start');
}

export function peakRss_mb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return Math.round(kb / 1024);
}

/** Keeps `concurrency` requests in flight for `seconds`; counts the ones answered with `okStatus`. */
export async function loadLoop(
  what: string,
  concurrency: number,
  seconds: number,
  okStatus: number,
  request: (pool: Pool) => Promise<{ statusCode: number; body: { text(): Promise<string> } }>,
): Promise<Run> {
  const pool = new Pool(`http://127.0.0.1:${PORT}`, { connections: concurrency, pipelining: 1 });
  const run: Run = { what, concurrency, ok: 0, failed: 0, seconds, latencies_ms: [] };
  const deadline = performance.now() + seconds * 1000;
  const worker = async () => {
    while (performance.now() < deadline) {
      const started = performance.now();
      const response = await request(pool);
      await response.body.text();
      if (response.statusCode === okStatus) {
        run.ok += 1;
        run.latencies_ms.push(performance.now() - started);
      } else run.failed += 1;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  await pool.close();
  return run;
}


/**
 * Runs a benchmark on SQLite and PostgreSQL (the local server by default), or on the engines
 * named in BENCH_ENGINES; an engine that cannot be reached is reported as skipped.
 */
export async function onEachBenchEngine(run: (engine: Engine) => Promise<void>): Promise<void> {
  process.env.TEST_POSTGRES_URL ??= 'postgres://postgres@127.0.0.1:5432/postgres';
  const only = process.env.BENCH_ENGINES?.split(',');
  for (const engine of availableEngines().filter((e) => e.name !== 'mysql' && (!only || only.includes(e.name)))) {
    try {
      await run(engine);
    } catch (error) {
      console.log(`\n== ${engine.name} == skipped: ${(error as Error).message}`);
    }
  }
}
