import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Kysely } from 'kysely';

/** What metrics read of the due-row tables every database has (the events and jobs modules own them; until they answer through functions, the columns are named here). */
interface DueTables {
  jobs: { id: number; kind: string; due_at_ms: number; dead_at_ms: number | null };
  outbox_events: { id: number; created_at_ms: number; dead_at_ms: number | null };
  dead_letters: { id: number; consumer: string; replayed_at_ms: number | null };
}

/**
 * Prometheus metrics, in a registry of each app's own (never prom-client's global one), so
 * several apps in one process (tests, benchmarks) keep their counts apart. Counters are moved
 * where things happen; the lags and dead-letter counts are read from the databases on scrape.
 */
export interface Metrics {
  registry: Registry;
  /** 下单: placed (201), refused (4xx, by error code) or failed (5xx). */
  checkouts: Counter<'outcome' | 'code'>;
  /** Channel notifications by channel and what became of them (handled, rejected, unknown_payment, failed). */
  notifications: Counter<'channel' | 'outcome'>;
  repairs: Counter<'check'>;
  repairFailures: Counter<'check'>;
  httpDuration: Histogram<'method' | 'route' | 'status_code'>;
}

/** Extra dead-letter counts (by source) for work that keeps its own; the consumers' table is read by default. */
export type DeadLetterSource = () => Promise<Record<string, number>>;

export interface MetricsSource {
  databases: readonly Kysely<DueTables>[];
  now: () => number;
  deadLetterSources?: DeadLetterSource[];
}

export const HTTP_DURATION_BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** How long "this database has no dead_letters table" is believed before asking again. */
const TABLE_CHECK_MS = 60_000;

export function createMetrics(source: MetricsSource): Metrics {
  const registry = new Registry();
  const registers = [registry];
  collectDefaultMetrics({ register: registry });

  new Gauge({
    name: 'tuangou_job_lag_seconds',
    help: 'Now minus the due time of the oldest due job (0 when none is due), over every database',
    registers,
    async collect() {
      this.set(await oldestAge_s(source, 'jobs', 'due_at_ms'));
    },
  });
  new Gauge({
    name: 'tuangou_outbox_lag_seconds',
    help: 'Age of the oldest outbox event not yet delivered (0 when none), over every database',
    registers,
    async collect() {
      this.set(await oldestAge_s(source, 'outbox_events', 'created_at_ms'));
    },
  });
  new Gauge({
    name: 'tuangou_dead_letters',
    help: 'Work set aside after its last attempt, waiting for a person: dead jobs, dead outbox events, events consumers failed on',
    labelNames: ['source'],
    registers,
    async collect() {
      this.reset();
      for (const [name, n] of Object.entries(await deadLetters(source))) this.set({ source: name }, n);
    },
  });

  return {
    registry,
    checkouts: new Counter({ name: 'tuangou_checkouts_total', help: 'Checkout requests by outcome and error code', labelNames: ['outcome', 'code'], registers }),
    notifications: new Counter({ name: 'tuangou_payment_notifications_total', help: 'Payment channel notifications by channel and outcome', labelNames: ['channel', 'outcome'], registers }),
    repairs: new Counter({ name: 'tuangou_consistency_repairs_total', help: 'Repairs made by the consistency reconciler, by check', labelNames: ['check'], registers }),
    repairFailures: new Counter({ name: 'tuangou_consistency_repair_failures_total', help: 'Reconciler repairs (or checks) that failed and wait for the next pass, by check', labelNames: ['check'], registers }),
    httpDuration: new Histogram({
      name: 'tuangou_http_request_duration_seconds',
      help: 'HTTP request duration by method, route pattern and status code',
      labelNames: ['method', 'route', 'status_code'],
      buckets: HTTP_DURATION_BUCKETS_S,
      registers,
    }),
  };
}

async function oldestAge_s(source: MetricsSource, table: 'jobs' | 'outbox_events', column: 'due_at_ms' | 'created_at_ms'): Promise<number> {
  const now_ms = source.now();
  let oldest = now_ms;
  for (const db of source.databases) {
    let query = db.selectFrom(table).select((eb) => eb.fn.min<number | null>(column).as('oldest')).where('dead_at_ms', 'is', null);
    // A job waiting for a later due time is not late.
    if (table === 'jobs') query = query.where('due_at_ms', '<=', now_ms);
    const row = await query.executeTakeFirst();
    if (row?.oldest !== null && row?.oldest !== undefined) oldest = Math.min(oldest, Number(row.oldest));
  }
  return Math.max(0, now_ms - oldest) / 1000;
}

async function deadLetters(source: MetricsSource): Promise<Record<string, number>> {
  const counts: Record<string, number> = { jobs: 0, outbox: 0, consumers: 0 };
  for (const db of source.databases) {
    counts.jobs! += await countRows(db, 'jobs');
    counts.outbox! += await countRows(db, 'outbox_events');
    // The consumers' dead letters (migration 0007), where the database has the table.
    if (await hasDeadLetterTable(db)) {
      const row = await db.selectFrom('dead_letters').select((eb) => eb.fn.countAll<number>().as('n')).where('replayed_at_ms', 'is', null).executeTakeFirst();
      counts.consumers! += Number(row?.n ?? 0);
    }
  }
  for (const extra of source.deadLetterSources ?? []) {
    for (const [name, n] of Object.entries(await extra())) counts[name] = (counts[name] ?? 0) + n;
  }
  return counts;
}

async function countRows(db: Kysely<DueTables>, table: 'jobs' | 'outbox_events'): Promise<number> {
  const row = await db.selectFrom(table).select((eb) => eb.fn.countAll<number>().as('n')).where('dead_at_ms', 'is not', null).executeTakeFirst();
  return Number(row?.n ?? 0);
}

const tableSeen = new WeakMap<Kysely<DueTables>, { present: boolean; checked_at_ms: number }>();

async function hasDeadLetterTable(db: Kysely<DueTables>): Promise<boolean> {
  const known = tableSeen.get(db);
  if (known && (known.present || Date.now() - known.checked_at_ms < TABLE_CHECK_MS)) return known.present;
  const present = (await db.introspection.getTables()).some((t) => t.name === 'dead_letters');
  tableSeen.set(db, { present, checked_at_ms: Date.now() });
  return present;
}
