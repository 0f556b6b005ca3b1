import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

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

/**
 * Where the scraped figures come from: functions of the modules that own the rows (the jobs and
 * events modules), handed in by the app, so the platform names no module's table.
 */
export interface MetricsSource {
  now: () => number;
  /** When the oldest job due by `now_ms` came due; undefined when none is. */
  oldestDueJob_ms: (now_ms: number) => Promise<number | undefined>;
  /** When the oldest outbox event not yet delivered was written; undefined when none waits. */
  oldestUndeliveredEvent_ms: () => Promise<number | undefined>;
  /** Work set aside after its last attempt, counted by source (`jobs`, `outbox`, `consumers`, …). */
  deadLetters: Readonly<Record<string, () => Promise<number>>>;
}

export const HTTP_DURATION_BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export function createMetrics(source: MetricsSource): Metrics {
  const registry = new Registry();
  const registers = [registry];
  collectDefaultMetrics({ register: registry });

  new Gauge({
    name: 'tuangou_job_lag_seconds',
    help: 'Now minus the due time of the oldest due job (0 when none is due), over every database',
    registers,
    async collect() {
      const now_ms = source.now();
      this.set(age_s(now_ms, await source.oldestDueJob_ms(now_ms)));
    },
  });
  new Gauge({
    name: 'tuangou_outbox_lag_seconds',
    help: 'Age of the oldest outbox event not yet delivered (0 when none), over every database',
    registers,
    async collect() {
      const now_ms = source.now();
      this.set(age_s(now_ms, await source.oldestUndeliveredEvent_ms()));
    },
  });
  new Gauge({
    name: 'tuangou_dead_letters',
    help: 'Work set aside after its last attempt, waiting for a person: dead jobs, dead outbox events, events consumers failed on',
    labelNames: ['source'],
    registers,
    async collect() {
      this.reset();
      for (const [name, count] of Object.entries(source.deadLetters)) this.set({ source: name }, await count());
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

/** Seconds since `since_ms` (0 when there is nothing, or it is in the future). */
function age_s(now_ms: number, since_ms: number | undefined): number {
  return since_ms === undefined ? 0 : Math.max(0, now_ms - since_ms) / 1000;
}
