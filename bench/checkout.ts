/**
 * Checkout throughput and latency over HTTP, beside the raw rate of the same row writes.
 *   npm run bench:checkout                      # SQLite, and PostgreSQL if it answers
 *   BENCH_SECONDS=20 npm run bench:checkout
 * The server runs as a child process (the bundle `npm start` runs), the load comes from this one over
 * keep-alive connections. Prints figures; asserts nothing.
 */
import { sqlitePath } from '../src/platform/db/database.ts';
import { signToken } from '../src/platform/http/tokens.ts';
import type { Engine } from '../test/support/engines.ts';
import { rawPostgres, rawSqlite, type RawTarget } from './raw-checkout.ts';
import { loadLoop, onEachBenchEngine, pct, peakRss_mb, seed, SECRET, startServer, type Run } from './support.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const WARMUP_SECONDS = 2;
const CONCURRENCIES = [1, 32];
const BUYERS = 5_000;


function loadHttp(fixture: { activitySkuId: number; leaderId: number }, concurrency: number, seconds: number, counter: { i: number }): Promise<Run> {
  const tokens = Array.from({ length: BUYERS }, (_, b) => signToken(SECRET, { role: 'buyer', subject: String(b + 1) }, Date.now()));
  const body = JSON.stringify({ leaderId: fixture.leaderId, items: [{ activitySkuId: fixture.activitySkuId, quantity: 1 }] });
  return loadLoop('checkout over HTTP', concurrency, seconds, 201, (pool) => {
    const i = counter.i++;
    return pool.request({
      method: 'POST',
      path: '/orders',
      headers: { authorization: `Bearer ${tokens[i % BUYERS]}`, 'content-type': 'application/json', 'idempotency-key': `bench-${process.pid}-${i}` },
      body,
    });
  });
}

/** The transport floor: the same client and server, an endpoint that touches no database. */
function loadHealth(concurrency: number, seconds: number): Promise<Run> {
  return loadLoop('GET /health (HTTP floor)', concurrency, seconds, 200, (pool) => pool.request({ method: 'GET', path: '/health' }));
}

/** Row keys come from one counter per database, so runs never collide. */
const rawCounter = { i: 0 };

async function loadRaw(target: RawTarget, concurrency: number, seconds: number, what: string): Promise<Run> {
  const run: Run = { what, concurrency, ok: 0, failed: 0, seconds, latencies_ms: [] };
  const deadline = performance.now() + seconds * 1000;
  const worker = async () => {
    while (performance.now() < deadline) {
      const started = performance.now();
      await target.run(rawCounter.i++);
      run.ok += 1;
      run.latencies_ms.push(performance.now() - started);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return run;
}


function report(engine: string, runs: Run[], rss_mb: number): void {
  console.log(`\n== ${engine} ==`);
  console.log('what                             conc   ok/s     p50 ms   p99 ms   failed');
  for (const r of runs) {
    const sorted = [...r.latencies_ms].sort((a, b) => a - b);
    console.log(
      `${r.what.padEnd(32)} ${String(r.concurrency).padStart(4)} ${String(Math.round(r.ok / r.seconds)).padStart(7)}   ${pct(sorted, 50).toFixed(2).padStart(7)}  ${pct(sorted, 99).toFixed(2).padStart(7)}   ${r.failed}`,
    );
  }
  const best = (what: string) => Math.max(...runs.filter((r) => r.what.startsWith(what)).map((r) => r.ok / r.seconds));
  const app = best('checkout');
  const raw = best('raw');
  console.log(`best checkout rate ${Math.round(app)}/s = ${((100 * app) / raw).toFixed(0)} % of the best raw rate ${Math.round(raw)}/s; server peak RSS ${rss_mb} MB`);
}

async function rawRuns(engine: Engine, url: string, activitySkuId: number, when: string): Promise<Run[]> {
  const runs: Run[] = [];
  if (engine.name === 'sqlite') {
    const raw = rawSqlite(sqlitePath(url), activitySkuId);
    runs.push(await loadRaw(raw, 1, SECONDS, `raw same writes, ${when}`));
    await raw.close();
    return runs;
  }
  for (const c of CONCURRENCIES) {
    const raw = rawPostgres(url, activitySkuId, c);
    runs.push(await loadRaw(raw, c, SECONDS, `raw same writes, ${when}`));
    await raw.close();
  }
  return runs;
}

/** The raw reference runs before and after the application on the same database; the disk is noisy. */
async function benchEngine(engine: Engine): Promise<void> {
  const database = await engine.createDatabase();
  try {
    const fixture = await seed(database.url);
    const runs: Run[] = await rawRuns(engine, database.url, fixture.activitySkuId, 'before');
    const server = await startServer(database.url);
    const counter = { i: 0 };
    let rss_mb = 0;
    try {
      await loadHttp(fixture, 8, WARMUP_SECONDS, counter);
      for (const c of CONCURRENCIES) runs.push(await loadHttp(fixture, c, SECONDS, counter));
      rss_mb = peakRss_mb(server.pid!);
      runs.push(await loadHealth(32, Math.min(SECONDS, 5)));
    } finally {
      server.kill('SIGTERM');
      await new Promise((r) => server.once('exit', r));
    }
    runs.push(...(await rawRuns(engine, database.url, fixture.activitySkuId, 'after')));
    report(engine.name, runs, rss_mb);
  } finally {
    await database.drop();
  }
}

console.log(`checkout benchmark: ${SECONDS}s per run, concurrency ${CONCURRENCIES.join(' and ')}, ${BUYERS} buyers, one SKU, Node ${process.version}`);
await onEachBenchEngine(benchEngine);
