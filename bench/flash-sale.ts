/**
 * 秒杀: BUYERS buyers race over HTTP for one SKU of STOCK units, each sending one checkout.
 * Prints successful orders/s while stock lasted, p50/p99 of every answer, answers by code, and
 * the oversell count (orders beyond the stock, which must be 0) read back from the database.
 *   npm run bench:flash-sale                       # SQLite, and PostgreSQL if it answers
 *   BUYERS=20000 STOCK=2000 CONCURRENCY=64 npm run bench:flash-sale
 * This is the database hot-row path only: the Redis path is not built yet.
 */
import { Pool } from 'undici';
import { stockLevels } from '../src/inventory/index.ts';
import { openDatabase } from '../src/platform/db/database.ts';
import { signToken } from '../src/platform/http/tokens.ts';
import type { Engine } from '../test/support/engines.ts';
import { onEachBenchEngine, pct, peakRss_mb, PORT, SECRET, seed, startServer } from './support.ts';

const BUYERS = Number(process.env.BUYERS ?? 10_000);
const STOCK = Number(process.env.STOCK ?? 1_000);
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 64);

async function race(engine: Engine): Promise<void> {
  const database = await engine.createDatabase();
  try {
    const fixture = await seed(database.url, STOCK);
    const server = await startServer(database.url);
    const tokens = Array.from({ length: BUYERS }, (_, b) => signToken(SECRET, { role: 'buyer', subject: String(b + 1) }, Date.now()));
    const body = JSON.stringify({ leaderId: fixture.leaderId, items: [{ activitySkuId: fixture.activitySkuId, quantity: 1 }] });
    const pool = new Pool(`http://127.0.0.1:${PORT}`, { connections: CONCURRENCY, pipelining: 1 });
    const latencies: number[] = [];
    const byCode = new Map<string, number>();
    let next = 0;
    let lastOrder_ms = 0;
    const started = performance.now();
    let rss_mb = 0;
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
    } finally {
      await pool.close();
      server.kill('SIGTERM');
      await new Promise((r) => server.once('exit', r));
    }
    const elapsed_ms = performance.now() - started;

    const db = await openDatabase(database.url);
    const { orders } = await db.selectFrom('orders').select((eb) => eb.fn.countAll<number>().as('orders')).executeTakeFirstOrThrow();
    const level = (await stockLevels(db, [fixture.activitySkuId])).get(fixture.activitySkuId)!;
    await db.destroy();
    const placed = byCode.get('placed') ?? 0;
    const sorted = latencies.sort((a, b) => a - b);
    console.log(`\n== ${engine.name} == ${BUYERS} buyers, ${STOCK} units, concurrency ${CONCURRENCY}`);
    console.log(`answers: ${[...byCode].map(([code, n]) => `${code} ${n}`).join(', ')}`);
    console.log(`orders/s while stock lasted: ${Math.round((placed / lastOrder_ms) * 1000)} (sold out after ${Math.round(lastOrder_ms)} ms); answers/s overall: ${Math.round((BUYERS / elapsed_ms) * 1000)}`);
    console.log(`latency of every answer: p50 ${pct(sorted, 50).toFixed(1)} ms, p99 ${pct(sorted, 99).toFixed(1)} ms; server peak RSS ${rss_mb} MB`);
    console.log(
      `oversell: ${Math.max(0, Number(orders) - STOCK)} (orders in the database ${orders}; ledger total ${level.total}, available ${level.available}, reserved ${level.reserved}, sold ${level.sold}, balanced ${level.available + level.reserved + level.sold === level.total})`,
    );
  } finally {
    await database.drop();
  }
}

console.log(`flash sale (database hot row; the Redis path is not built yet), Node ${process.version}`);
await onEachBenchEngine(race);
