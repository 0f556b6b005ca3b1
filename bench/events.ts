/**
 * Outbox → NATS JetStream → consumer: throughput and end-to-end lag (event committed → its
 * consumer's transaction, inbox row included, applied) at offered loads of 1,000 and 5,000 events/s.
 *   npm run bench:events                       # SQLite and PostgreSQL, NATS at NATS_URL (default nats://127.0.0.1:4222)
 *   BENCH_SECONDS=20 BENCH_RATES=1000,5000,8000 BENCH_ENGINES=postgres npm run bench:events
 * One process does it all (producer, relay, consumers), as `tuangou start` does; a stream of its
 * own, deleted afterwards. Each event is its own transaction, as a checkout's would be. Prints
 * figures; asserts nothing. Target (issue 5): lag p99 < 100 ms at 5,000/s.
 */
import { randomBytes } from 'node:crypto';
import { jetstream } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import pino from 'pino';
import { createApp } from '../src/app.ts';
import { recordEvent } from '../src/events/outbox.ts';
import { inTransaction } from '../src/events/relay.ts';
import { transaction } from '../src/platform/db/retry.ts';
import { onEachBenchEngine, pct } from './support.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const RATES = (process.env.BENCH_RATES ?? '1000,5000').split(',').map(Number);
const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
const TICK_MS = 5;
/** Transactions the producer keeps in flight at once (PostgreSQL takes them in parallel). */
const PRODUCER_CONCURRENCY = 8;
const DRAIN_TIMEOUT_MS = 60_000;
const BENCH_EVENT = 'bench.tick';

await onEachBenchEngine(async (engine) => {
  const database = await engine.createDatabase();
  const tag = randomBytes(4).toString('hex');
  const stream = `TGBENCH_${tag}`;
  const lags: number[] = [];
  let handled = 0;
  const app = await createApp(
    {
      databaseUrl: database.url,
      orderShardUrls: [database.url],
      port: 0,
      host: '127.0.0.1',
      dataDir: '/nonexistent',
      tokenSecret: 'bench-secret-of-the-benchmarks-32b',
      paymentTimeout_ms: 15 * 60_000,
      nodeId: 1,
      natsUrl: NATS_URL,
      natsStream: stream,
      natsSubjectPrefix: `tgbench.${tag}`,
    },
    {
      log: pino({ level: 'error' }),
      channels: {},
      flashSaleUpkeep_ms: 0,
      subscribe: (bus) =>
        bus.subscribe(BENCH_EVENT, 'bench.lag', inTransaction(bus.db, async (_trx, e) => {
          lags.push(Date.now() - e.created_at_ms);
          handled += 1;
        })),
    },
  );
  try {
    console.log(`\n== ${engine.name} == outbox → JetStream (${NATS_URL}) → consumer, ${SECONDS} s per rate, one transaction per event`);
    for (const rate of RATES) {
      lags.length = 0;
      handled = 0;
      let produced = 0;
      const started = Date.now();
      const end = started + SECONDS * 1000;
      let inFlight = 0;
      let behind_ms = 0;
      while (Date.now() < end) {
        const due = Math.floor(((Date.now() - started) / 1000) * rate);
        const writes: Promise<void>[] = [];
        while (produced < due && inFlight < PRODUCER_CONCURRENCY * 4) {
          produced += 1;
          inFlight += 1;
          const n = produced;
          writes.push(
            transaction(app.db, async (trx) => void (await recordEvent(trx, { type: BENCH_EVENT, aggregateId: `agg-${n % 64}`, payload: { n } }, Date.now()))).finally(() => {
              inFlight -= 1;
            }),
          );
          if (writes.length >= PRODUCER_CONCURRENCY) await Promise.all(writes.splice(0));
        }
        await Promise.all(writes);
        app.wake();
        behind_ms = Math.max(behind_ms, ((due - produced) / rate) * 1000);
        await new Promise((r) => setTimeout(r, TICK_MS));
      }
      const produceSeconds = (Date.now() - started) / 1000;
      const drainedBy = Date.now() + DRAIN_TIMEOUT_MS;
      while (handled < produced && Date.now() < drainedBy) await new Promise((r) => setTimeout(r, 10));
      const totalSeconds = (Date.now() - started) / 1000;
      const sorted = [...lags].sort((a, b) => a - b);
      const p99 = pct(sorted, 99);
      console.log(
        `offered ${rate}/s: produced ${(produced / produceSeconds).toFixed(0)}/s, handled ${handled}/${produced} ` +
          `(${(handled / totalSeconds).toFixed(0)}/s over ${totalSeconds.toFixed(1)} s); lag p50 ${pct(sorted, 50)} ms, p99 ${p99} ms, max ${sorted.at(-1)} ms` +
          (rate === 5000 ? ` — p99 < 100 ms: ${p99 < 100 ? 'yes' : 'NO'}` : ''),
      );
    }
  } finally {
    await app.close();
    const nc = await connect({ servers: NATS_URL });
    await (await jetstream(nc).jetstreamManager()).streams.delete(stream).catch(() => undefined);
    await nc.close();
    await database.drop();
  }
});
