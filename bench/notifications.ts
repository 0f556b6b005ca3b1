/**
 * Payment notifications verified and applied per second, at concurrency 32.
 *   npm run bench:notifications                          # SQLite, and PostgreSQL if it answers
 *   BENCH_NOTIFICATIONS=10000 BENCH_CHANNELS=wechat npm run bench:notifications
 * The server runs as a child process on the channel sandbox (SANDBOX_URL, this process). For
 * each channel, in rounds of ROUND: orders are placed and a payment started for each over
 * HTTP; the sandbox signs one success notification per payment (beforehand, so signing does not
 * load the client); then they are posted to /payments/notify/{channel}, 32 in flight, and only
 * this part is timed. Each one is verified, recorded and takes its order to PAID. Rounds keep
 * each blast ahead of the payments' first active query (15 s), which would otherwise find the
 * successes first. Prints figures; asserts nothing.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool } from 'undici';
import { openDatabase, sqlitePath } from '../src/platform/db/database.ts';
import { signToken } from '../src/platform/http/tokens.ts';
import type { ChannelName } from '../src/payments/channels/types.ts';
import type { OutgoingNotification } from '../src/tools/sandbox/notifications.ts';
import { sandboxKeysIn, startChannelSandbox } from '../src/tools/sandbox/index.ts';
import { onEachBenchEngine, pct, peakRss_mb, PORT, SECRET, seed, startServer } from './support.ts';

const COUNT = Number(process.env.BENCH_NOTIFICATIONS ?? 5_000);
const CHANNELS = (process.env.BENCH_CHANNELS ?? 'wechat,alipay').split(',') as ChannelName[];
const CONCURRENCY = 32;
const SETUP_CONCURRENCY = 16;
const BUYERS = 5_000;
const ROUND = Number(process.env.BENCH_ROUND ?? 1_000);
/** BENCH_SPLIT=1: the API in one process and `tuangou worker` (relay, jobs, consumers) in another. */
const SPLIT = process.env.BENCH_SPLIT === '1';

async function inParallel<T>(count: number, concurrency: number, work: (i: number) => Promise<T>): Promise<T[]> {
  const results: T[] = new Array(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        const i = next++;
        results[i] = await work(i);
      }
    }),
  );
  return results;
}

await onEachBenchEngine(async (engine) => {
  const database = await engine.createDatabase();
  const dataDir = mkdtempSync(join(tmpdir(), 'tuangou-bench-notify-'));
  const keys = sandboxKeysIn(dataDir);
  // Nothing is delivered by the sandbox itself: this benchmark delivers.
  const sandbox = await startChannelSandbox({ keys, core: { retryScale: 1 } });
  sandbox.core.setFaults({ drop: 1_000_000_000 });
  const fixture = await seed(database.url);
  const server = await startServer(database.url, { TUANGOU_DATA_DIR: dataDir, SANDBOX_URL: sandbox.url, PUBLIC_URL: `http://127.0.0.1:${PORT}` }, { worker: SPLIT });
  const pool = new Pool(`http://127.0.0.1:${PORT}`, { connections: CONCURRENCY, pipelining: 1 });
  const tokens = Array.from({ length: BUYERS }, (_, b) => signToken(SECRET, { role: 'buyer', subject: String(b + 1) }, Date.now()));
  console.log(`\n== ${engine.name} == ${COUNT} notifications per channel, concurrency ${CONCURRENCY}${SPLIT ? ', API and worker in two processes' : ', one process'}`);
  console.log('channel    setup s   notifications/s   p50 ms   p99 ms   accepted   orders PAID');
  try {
    let serial = 0;
    for (const channel of CHANNELS) {
      let setup_ms = 0;
      let blast_ms = 0;
      let accepted = 0;
      const latencies: number[] = [];
      const allPayNos: { payNo: string; orderNo: string }[] = [];
      for (let done = 0; done < COUNT; done += ROUND) {
      const size = Math.min(ROUND, COUNT - done);
      const setupStarted = performance.now();
      const payNos = await inParallel(size, SETUP_CONCURRENCY, async () => {
        const i = serial++;
        const buyer = i % BUYERS;
        const headers = { authorization: `Bearer ${tokens[buyer]}`, 'content-type': 'application/json' };
        const placed = await pool.request({
          method: 'POST',
          path: '/orders',
          headers: { ...headers, 'idempotency-key': `bench-notify-${process.pid}-${i}` },
          body: JSON.stringify({ leaderId: fixture.leaderId, items: [{ activitySkuId: fixture.activitySkuId, quantity: 1 }] }),
        });
        const order = (await placed.body.json()) as { orderNo: string };
        const started = await pool.request({ method: 'POST', path: `/orders/${order.orderNo}/payments`, headers, body: JSON.stringify({ channel, method: 'qr' }) });
        const payment = (await started.body.json()) as { payNo?: string; code?: string };
        if (!payment.payNo) throw new Error(`payment not started: ${JSON.stringify(payment)}`);
        return { payNo: payment.payNo, orderNo: order.orderNo };
      });
      // The success each channel would send, signed now so the client does no signing under load.
      const notifications: OutgoingNotification[] = payNos.map(({ payNo }) => {
        const trade = sandbox.core.trade(channel, payNo)!;
        return sandbox.core.notificationFor({ kind: 'paid', trade: { ...trade, state: 'SUCCESS', paid_at_ms: Date.now() } })!;
      });
      setup_ms += performance.now() - setupStarted;
      allPayNos.push(...payNos);

      const blastStarted = performance.now();
      await inParallel(size, CONCURRENCY, async (i) => {
        const n = notifications[i]!;
        const t = performance.now();
        const response = await pool.request({ method: 'POST', path: `/payments/notify/${channel}`, headers: n.headers, body: n.body });
        const text = await response.body.text();
        latencies.push(performance.now() - t);
        if (response.statusCode < 300 && (channel !== 'alipay' || text === 'success')) accepted++;
      });
      blast_ms += performance.now() - blastStarted;
      }
      const seconds = blast_ms / 1000;
      const setup_s = setup_ms / 1000;
      latencies.sort((a, b) => a - b);

      const db = await openDatabase(database.url);
      const paid = await db
        .selectFrom('orders')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('status', '=', 'PAID')
        .where('order_no', 'in', allPayNos.map((p) => p.orderNo).slice(0, 30_000))
        .executeTakeFirstOrThrow();
      await db.destroy();
      console.log(
        `${channel.padEnd(10)} ${setup_s.toFixed(1).padStart(7)}   ${(COUNT / seconds).toFixed(0).padStart(15)}   ${pct(latencies, 50).toFixed(1).padStart(6)}   ${pct(latencies, 99).toFixed(1).padStart(6)}   ${String(accepted).padStart(8)}   ${String(Number(paid.n)).padStart(11)}`,
      );
    }
    console.log(`peak RSS of the server: ${peakRss_mb(server.pid!)} MB${engine.name === 'sqlite' ? ` (${sqlitePath(database.url)})` : ''}`);
  } finally {
    await pool.close();
    server.kill('SIGTERM');
    await new Promise((r) => server.once('exit', r));
    await sandbox.close();
    await database.drop();
  }
});
