import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildHttp } from '../src/http.ts';
import { availableEngines } from './support/engines.ts';
import { seedActivity, startHarness, type Harness } from './support/harness.ts';
import { asBuyer, payAtCashier } from './support/client.ts';
import { untilQuiet } from './support/quiet.ts';

/**
 * Metrics and logs, on every engine: GET /metrics exposes the named metrics from the app's own
 * registry, and its counters move after a checkout and a payment notification; the log lines of
 * a request carry its request id (x-request-id) and the checkout or order number.
 */
for (const engine of availableEngines()) {
  describe(`metrics and structured logs on ${engine.name}`, () => {
    let h: Harness;
    const lines: Record<string, any>[] = [];
    beforeAll(async () => {
      const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
      h = await startHarness(engine, { sandbox: {}, log });
    });
    afterAll(async () => h?.close());

    const scrape = async () => {
      const response = await h.http.inject({ method: 'GET', url: '/metrics' });
      expect(response.statusCode).toBe(200);
      expect(response.headers['content-type']).toContain('text/plain');
      return response.body;
    };
    /** The value of one sample, 0 when the series has none yet. */
    const sample = (text: string, series: string) => {
      const line = text.split('\n').find((l) => l.startsWith(series + ' '));
      return line ? Number(line.slice(series.length + 1)) : 0;
    };

    it('exposes the named metrics', async () => {
      const text = await scrape();
      for (const name of [
        'tuangou_checkouts_total',
        'tuangou_payment_notifications_total',
        'tuangou_job_lag_seconds',
        'tuangou_outbox_lag_seconds',
        'tuangou_dead_letters',
        'tuangou_consistency_repairs_total',
        'tuangou_http_request_duration_seconds',
        'process_cpu_seconds_total',
      ]) {
        expect(text).toContain(`# TYPE ${name} `);
      }
    });

    it('counts checkouts by outcome and code, and logs each answer with its request id and checkout number', async () => {
      const f = await seedActivity(h.app, { skus: [{ price_fen: 1000, stock: 1 }] });
      const before = await scrape();
      const placed = await asBuyer(h, 97_001).checkout({ leaderId: f.leaderId, items: [{ activitySkuId: f.activitySkuIds[0]!, quantity: 1 }] }, { key: 'obs-1', headers: { 'x-request-id': 'req-obs-1' } });
      expect(placed.status).toBe(201);
      const checkoutNo = placed.body.checkoutNo as string;
      const refused = await asBuyer(h, 97_002).checkout({ leaderId: f.leaderId, items: [{ activitySkuId: f.activitySkuIds[0]!, quantity: 1 }] });
      expect(refused.body.code).toBe('insufficient_stock');

      const after = await scrape();
      const placedSeries = 'tuangou_checkouts_total{outcome="placed",code="none"}';
      const refusedSeries = 'tuangou_checkouts_total{outcome="refused",code="insufficient_stock"}';
      expect(sample(after, placedSeries) - sample(before, placedSeries)).toBe(1);
      expect(sample(after, refusedSeries) - sample(before, refusedSeries)).toBe(1);
      expect(after).toMatch(/tuangou_http_request_duration_seconds_count\{method="POST",route="\/orders",status_code="201"\} \d+/);

      const answered = lines.filter((l) => l.msg === 'checkout answered' && l.reqId === 'req-obs-1');
      expect(answered).toHaveLength(1);
      // The answer is a checkout (its orders inside): the line names the checkout number.
      expect(answered[0]).toMatchObject({ reqId: 'req-obs-1', checkoutNo, buyerId: 97_001, status: 201 });
      // Fastify's own lines for the request carry the same id.
      expect(lines.filter((l) => l.reqId === 'req-obs-1').length).toBeGreaterThanOrEqual(1);
    });

    it('counts payment notifications by channel and outcome', async () => {
      const f = await seedActivity(h.app, { skus: [{ price_fen: 1000, stock: 5 }] });
      const placed = await asBuyer(h, 97_003).checkout({ leaderId: f.leaderId, items: [{ activitySkuId: f.activitySkuIds[0]!, quantity: 1 }] });
      const orderNo = placed.body.orders[0].orderNo as string;
      const before = await scrape();
      const method = h.app.payments.channels.get('alipay')!.methods[0]!;
      const started = await asBuyer(h, 97_003).post(`/orders/${orderNo}/payments`, { channel: 'alipay', method }, { 'x-request-id': 'req-obs-pay' });
      expect(started.status).toBe(201);
      expect((await payAtCashier(h, 'alipay', started.body.payNo))).toBe(200);
      for (let i = 0; i < 3; i++) {
        await h.sandbox!.core.untilDelivered();
        await untilQuiet(h);
      }
      const forged = await fetch(`${h.app.payments.publicUrl}/payments/notify/alipay`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-request-id': 'req-obs-forged' }, body: 'out_trade_no=x&sign=bad' });
      expect(forged.status).toBeGreaterThanOrEqual(200);

      const after = await scrape();
      const handled = 'tuangou_payment_notifications_total{channel="alipay",outcome="handled"}';
      const rejected = 'tuangou_payment_notifications_total{channel="alipay",outcome="rejected"}';
      expect(sample(after, handled) - sample(before, handled)).toBeGreaterThanOrEqual(1);
      expect(sample(after, rejected) - sample(before, rejected)).toBe(1);
      expect(lines.find((l) => l.msg === 'payment started' && l.reqId === 'req-obs-pay')).toMatchObject({ orderNo, channel: 'alipay', payNo: started.body.payNo });
      // The payment centre's own lines, logged deep in the notification path, carry the request's id.
      expect(lines.find((l) => l.reqId === 'req-obs-forged')).toMatchObject({ channel: 'alipay', msg: 'notification rejected: verification failed' });
    });

    it('reads job lag, outbox lag and dead letters from the databases on scrape', async () => {
      const now = h.clock.now();
      const db = h.app.db;
      // An event waiting a minute (due later, so no relay takes it) and a dead job.
      await db
        .insertInto('outbox_events')
        .values({ event_id: crypto.randomUUID(), event_type: 'test.lag', aggregate_id: 'x', payload: '{}', created_at_ms: now - 60_000, due_at_ms: now + 3600_000, locked_until_ms: 0, locked_by: null, attempts: 0, last_error: null, dead_at_ms: null })
        .execute();
      await db
        .insertInto('jobs')
        .values({ kind: 'test.dead', job_key: `test.dead:${now}`, payload: '{}', created_at_ms: now, due_at_ms: now + 3600_000, locked_until_ms: 0, locked_by: null, attempts: 20, max_attempts: 20, last_error: 'gave up', dead_at_ms: now })
        .execute();
      const text = await scrape();
      expect(sample(text, 'tuangou_outbox_lag_seconds')).toBeGreaterThanOrEqual(60);
      expect(sample(text, 'tuangou_dead_letters{source="jobs"}')).toBe(1);
      expect(text).toContain('tuangou_dead_letters{source="consumers"}');
      expect(sample(text, 'tuangou_job_lag_seconds')).toBeGreaterThanOrEqual(0);
      await db.deleteFrom('outbox_events').where('event_type', '=', 'test.lag').execute();
      await db.deleteFrom('jobs').where('kind', '=', 'test.dead').execute();
    });

    it('serves no /metrics when the config turns it off', async () => {
      const off = await buildHttp({ ...h.app, config: { ...h.app.config, metricsEnabled: false } });
      try {
        expect((await off.inject({ method: 'GET', url: '/metrics' })).statusCode).toBe(404);
      } finally {
        await off.close();
      }
    });
  });
}
