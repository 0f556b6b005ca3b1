/**
 * 秒杀: BUYERS buyers race over HTTP for one SKU of STOCK units, each sending one checkout, on the
 * database hot row and (when Redis answers) through the Redis gate. Prints successful orders/s
 * while stock lasted, p50/p99 of every answer, answers by code, and the oversell count (orders
 * beyond the stock, which must be 0) read back from the database after the server drained.
 * On the Redis path it also times the gate alone: reservation scripts straight to Redis.
 *   npm run bench:flash-sale                       # SQLite and PostgreSQL; database, then Redis
 *   BUYERS=20000 STOCK=2000 CONCURRENCY=64 BENCH_MODES=redis npm run bench:flash-sale
 */
import { Pool } from 'undici';
import pino from 'pino';
import { stockLevels } from '../src/inventory/index.ts';
import { closeFlashSale, ensureLoaded, grantFlashSale, openFlashSale } from '../src/inventory/flash-sale/index.ts';
import { openDatabase } from '../src/platform/db/database.ts';
import { signToken } from '../src/platform/http/tokens.ts';
import type { Engine } from '../test/support/engines.ts';
import { onEachBenchEngine, pct, peakRss_mb, PORT, SECRET, seed, startServer } from './support.ts';

const BUYERS = Number(process.env.BUYERS ?? 10_000);
const STOCK = Number(process.env.STOCK ?? 1_000);
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 64);
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const MODES = (process.env.BENCH_MODES ?? 'db,redis').split(',') as ('db' | 'redis')[];
/** The gate-alone measurement: this many single-unit reservations, this many in flight. */
const GATE_RESERVATIONS = Number(process.env.GATE_RESERVATIONS ?? 50_000);
const GATE_CONCURRENCY = 256;
/** The relay brings the database in line after the race; the count is read once it is done. */
const CATCH_UP_POLL_MS = 100;
const MAX_CATCH_UP_MS = 120_000;

async function race(engine: Engine, mode: 'db' | 'redis'): Promise<void> {
  const database = await engine.createDatabase();
  const prefix = `tgbench:${process.pid}:${engine.name}:`;
  try {
    const fixture = await seed(database.url, STOCK, { hot: mode === 'redis' });
    const server = await startServer(database.url, mode === 'redis' ? { REDIS_URL, REDIS_KEY_PREFIX: prefix } : {});
    const tokens = Array.from({ length: BUYERS }, (_, b) => signToken(SECRET, { role: 'buyer', subject: String(b + 1) }, Date.now()));
    const body = JSON.stringify({ leaderId: fixture.leaderId, items: [{ activitySkuId: fixture.activitySkuId, quantity: 1 }] });
    const pool = new Pool(`http://127.0.0.1:${PORT}`, { connections: CONCURRENCY, pipelining: 1 });
    const latencies: number[] = [];
    const byCode = new Map<string, number>();
    let next = 0;
    let lastOrder_ms = 0;
    const started = performance.now();
    let rss_mb = 0;
    const db = await openDatabase(database.url);
    let level;
    let orders = 0;
    try {
      await Promise.all(
        Array.from({ length: CONCURRENCY }, async () => {
          while (next < BUYERS) {
            const buyer = next++;
            const t0 = performance.now();
            const response = await pool.request({
              method: 'POST',
              path: '/orders',
              headers: { authorization: `Bearer ${tokens[buyer]}`, 'content-type': 'application/json', 'idempotency-key': `flash-${buyer}` },
              body,
            });
            const answer = (await response.body.json()) as { code?: string };
            latencies.push(performance.now() - t0);
            const code = response.statusCode === 201 ? 'placed' : (answer.code ?? String(response.statusCode));
            byCode.set(code, (byCode.get(code) ?? 0) + 1);
            if (response.statusCode === 201) lastOrder_ms = performance.now() - started;
          }
        }),
      );
      rss_mb = peakRss_mb(server.pid!);
      // On the Redis path the stock row catches up through the outbox; wait until it has.
      const caughtUpBy = performance.now() + MAX_CATCH_UP_MS;
      do {
        orders = Number((await db.selectFrom('orders').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
        level = (await stockLevels(db, [fixture.activitySkuId])).get(fixture.activitySkuId)!;
        if (level.reserved + level.sold >= orders) break;
        await new Promise((r) => setTimeout(r, CATCH_UP_POLL_MS));
      } while (performance.now() < caughtUpBy);
    } finally {
      await pool.close();
      server.kill('SIGTERM');
      await new Promise((r) => server.once('exit', r));
    }
    const elapsed_ms = performance.now() - started;
    const placed = byCode.get('placed') ?? 0;
    const sorted = latencies.sort((a, b) => a - b);
    console.log(`\n== ${engine.name}, ${mode === 'redis' ? 'Redis gate' : 'database hot row'} == ${BUYERS} buyers, ${STOCK} units, concurrency ${CONCURRENCY}`);
    console.log(`answers: ${[...byCode].map(([code, n]) => `${code} ${n}`).join(', ')}`);
    console.log(`orders/s while stock lasted: ${Math.round((placed / lastOrder_ms) * 1000)} (sold out after ${Math.round(lastOrder_ms)} ms); answers/s overall: ${Math.round((BUYERS / elapsed_ms) * 1000)}`);
    console.log(`latency of every answer: p50 ${pct(sorted, 50).toFixed(1)} ms, p99 ${pct(sorted, 99).toFixed(1)} ms; server peak RSS ${rss_mb} MB`);
    console.log(
      `oversell: ${Math.max(0, orders - STOCK)} (orders in the database ${orders}; ledger total ${level!.total}, available ${level!.available}, reserved ${level!.reserved}, sold ${level!.sold}, balanced ${level!.available + level!.reserved + level!.sold === level!.total})`,
    );
    if (mode === 'redis') await gateAlone(db, database.url, prefix);
    await db.destroy();
  } finally {
    await database.drop();
  }
}

/**
 * The Redis gate without HTTP or the database's order writes: GATE_RESERVATIONS single-unit
 * reservation scripts against a hot SKU with enough stock, GATE_CONCURRENCY in flight.
 */
async function gateAlone(db: Awaited<ReturnType<typeof openDatabase>>, url: string, prefix: string): Promise<void> {
  const fixture = await seed(url, GATE_RESERVATIONS, { hot: true });
  const fs = openFlashSale(REDIS_URL, `${prefix}gate:`, pino({ level: 'silent' }));
  try {
    await ensureLoaded(fs, db, fixture.activityId, Date.now());
    const items = [{ activityId: fixture.activityId, activitySkuId: fixture.activitySkuId, quantity: 1, purchaseLimit: 5 }];
    let next = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: GATE_CONCURRENCY }, async () => {
        while (next < GATE_RESERVATIONS) {
          const i = next++;
          await grantFlashSale(fs, db, `G${i}`, i + 1, items, Date.now());
        }
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    console.log(`Redis gate alone: ${GATE_RESERVATIONS} reservations in ${seconds.toFixed(2)} s = ${Math.round(GATE_RESERVATIONS / seconds)} reservations/s (one client connection, ${GATE_CONCURRENCY} in flight)`);
    const keys = await fs.redis.keys(`${prefix}*`);
    if (keys.length) await fs.redis.del(...keys);
  } finally {
    await closeFlashSale(fs);
  }
}

console.log(`flash sale, Node ${process.version}; modes: ${MODES.join(', ')}`);
await onEachBenchEngine(async (engine) => {
  for (const mode of MODES) await race(engine, mode);
});
