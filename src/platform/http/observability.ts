import type { FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import type { Metrics } from '../metrics.ts';
import type { RouteModule } from './server.ts';

/** The checkout route, whose answers are counted by outcome and error code. */
const CHECKOUT_ROUTE = 'POST /orders';

/**
 * Request metrics, and `GET /metrics` (Prometheus text exposition) when the config enables it
 * (METRICS_ENABLED, on by default). It is unauthenticated, like every scrape target: keep it off
 * the public listener, or turn it off. Registered before the other modules, so its hooks see
 * every route.
 */
export const observabilityRoutes: RouteModule<{ metrics: Metrics; config: Pick<Config, 'metricsEnabled'> }> = (server, app) => {
  const { metrics } = app;
  server.addHook('onSend', async (request, reply, payload) => {
    if (`${request.method} ${request.routeOptions.url}` === CHECKOUT_ROUTE) {
      const status = reply.statusCode;
      const outcome = status < 300 ? 'placed' : status < 500 ? 'refused' : 'failed';
      metrics.checkouts.inc({ outcome, code: status < 300 ? 'none' : errorCodeOf(payload) });
    }
    return payload;
  });
  server.addHook('onResponse', async (request, reply) => {
    metrics.httpDuration.observe(
      { method: request.method, route: request.routeOptions.url ?? 'unmatched', status_code: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
  });

  if (app.config.metricsEnabled === false) return;
  server.get('/metrics', { schema: { hide: true } }, async (_request, reply) => {
    const body = await metrics.registry.metrics();
    return reply.type(metrics.registry.contentType).send(body);
  });
};

/** Error answers are {code, message}; anything else is counted as unknown. */
function errorCodeOf(payload: unknown): string {
  if (typeof payload !== 'string') return 'unknown';
  try {
    const code = (JSON.parse(payload) as { code?: unknown }).code;
    return typeof code === 'string' ? code : 'unknown';
  } catch {
    return 'unknown';
  }
}

/**
 * The request's logger (it carries reqId, from x-request-id) with more bound, e.g. the order
 * number: routes hand it to the domain code as the platform's `log` (see withLog).
 */
export function requestLog(request: FastifyRequest, bindings: Record<string, unknown>): Logger {
  // The server logs through the app's pino (loggerInstance), so the request's logger is a pino child.
  return (request.log as unknown as Logger).child(bindings);
}

/** The platform (or anything with a `log`) with another logger, for one request's work. */
export function withLog<T extends { log: Logger }>(deps: T, log: Logger): T {
  return { ...deps, log };
}
