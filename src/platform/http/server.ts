import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import helmet from '@fastify/helmet';
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import Fastify, { LogController, type FastifyError, type FastifyInstance, type FastifyReply } from 'fastify';
import { hasZodFastifySchemaValidationErrors, jsonSchemaTransform, serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Logger } from 'pino';
import type { Config, HttpLimits } from '../config.ts';
import { AppError, ERROR_CODES, InvariantViolation, type ErrorBody } from '../errors.ts';
import './auth.ts';
import type { VerifiedToken } from './tokens.ts';
import { unsafeTextAt } from './inputs.ts';

/** Largest request body accepted, in bytes. */
export const MAX_BODY_BYTES = 64 * 1024;

/** What a connection may take of us (each a setting: HTTP_REQUEST_TIMEOUT_MS and the others, README). */
export const DEFAULT_HTTP_LIMITS: HttpLimits = {
  requestTimeout_ms: 30_000,
  connectionTimeout_ms: 60_000,
  keepAliveTimeout_ms: 5_000,
  maxConnections: 10_000,
};
/** A request id from the caller is kept only if it is this short and plain; otherwise one is made. */
export const MAX_REQUEST_ID_LENGTH = 64;
const REQUEST_ID = /^[A-Za-z0-9._:-]+$/;

export type Server = FastifyInstance<any, any, any, any, ZodTypeProvider>;
/** Routes of one module; `deps` is what that module's routes use of the running app, named by the module. */
export type RouteModule<Deps> = (server: Server, deps: Deps) => void;

/** What the server itself needs of the app: its settings, its log, the clock and who a token speaks for. */
export interface ServerDeps {
  config: Pick<Config, 'http' | 'trustProxy' | 'publicUrl'>;
  log: Logger;
  now: () => number;
  tokens: { principalOf(authorization: string | undefined, now_ms: number): VerifiedToken | undefined };
  /** With Redis, rate-limit counts live there, so every API process counts together. */
  rateLimitStore?: { redis: unknown; nameSpace: string } | undefined;
}

export async function buildServer<Deps extends ServerDeps>(app: Deps, modules: RouteModule<Deps>[], options: { logger?: boolean } = {}): Promise<Server> {
  const limits = { ...DEFAULT_HTTP_LIMITS, ...app.config.http };
  const server = Fastify({
    // Requests log through the app's own pino, so each request's lines (and the domain lines the
    // routes log with request.log) carry its reqId; without `logger` the per-request lines are left out.
    // A silent app logs nothing, so its requests get Fastify's no-op logger, not a child logger each.
    ...(app.log.level === 'silent' ? {} : { loggerInstance: app.log, logController: new LogController({ disableRequestLogging: !options.logger }) }),
    bodyLimit: MAX_BODY_BYTES,
    requestTimeout: limits.requestTimeout_ms,
    connectionTimeout: limits.connectionTimeout_ms,
    keepAliveTimeout: limits.keepAliveTimeout_ms,
    // Node checks the request timeout on this beat (its default, 30 s, would let a trickle live that much longer).
    http: { connectionsCheckingInterval: Math.max(100, Math.min(1_000, limits.requestTimeout_ms / 2)), headersTimeout: limits.requestTimeout_ms },
    trustProxy: app.config.trustProxy === true,
    // The router's own refusals (a path parameter past maxParamLength, a path that is not UTF-8)
    // leave through the error table too, without echoing the path.
    frameworkErrors: (error, _request, reply: FastifyReply) => {
      const code = (error as FastifyError).code === 'FST_ERR_MAX_PARAM_LENGTH' ? 'uri_too_long' : 'invalid_request';
      void reply.status(ERROR_CODES[code].status).send({ code, message: ERROR_CODES[code].message } satisfies ErrorBody);
    },
    // What Node refuses before there is a request (a trickle past the timeout, headers past 16 KB,
    // a malformed request line): the same table, written on the socket.
    clientErrorHandler: (error: NodeJS.ErrnoException, socket) => {
      if (error.code === 'ECONNRESET' || socket.destroyed) return;
      const code = error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 'request_timeout' : error.code === 'HPE_HEADER_OVERFLOW' ? 'headers_too_large' : 'invalid_request';
      const { status, message } = ERROR_CODES[code];
      const body = JSON.stringify({ code, message } satisfies ErrorBody);
      if (socket.writable) socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n${body}`);
      socket.destroy();
    },
    // Request ids come from the caller when it sends one, so logs join across services; only a
    // short, plain one (a long one would be copied into every log line of the request).
    genReqId: (request) => {
      const given = request.headers['x-request-id'];
      return typeof given === 'string' && given.length <= MAX_REQUEST_ID_LENGTH && REQUEST_ID.test(given) ? given : randomUUID();
    },
    ajv: { customOptions: { removeAdditional: false } },
  }).withTypeProvider<ZodTypeProvider>();
  server.server.maxConnections = limits.maxConnections;
  server.setValidatorCompiler(validatorCompiler);
  server.setSerializerCompiler(serializerCompiler);

  await server.register(swagger, {
    openapi: {
      info: { title: 'tuangou', description: 'Order and payment platform for community group-buying', version: '0.1.0' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
    transform: jsonSchemaTransform,
  });
  await server.register(swaggerUi, { routePrefix: '/docs' });
  // nosniff, frame protection (DENY) and the rest of helmet's headers on every answer; HSTS only
  // on https (behind a proxy that says so, TRUST_PROXY=1). The CSP lets the docs page run.
  await server.register(helmet, {
    hsts: false,
    frameguard: { action: 'deny' },
    contentSecurityPolicy: { directives: { 'img-src': ["'self'", 'data:', 'validator.swagger.io'], 'script-src': ["'self'", "'unsafe-inline'"], 'style-src': ["'self'", "'unsafe-inline'"] } },
  });
  server.addHook('onSend', async (request, reply) => {
    if (request.protocol === 'https') void reply.header('strict-transport-security', 'max-age=31536000; includeSubDomains');
    // Anything answered to a token is that person's: no cache keeps it.
    if (request.headers.authorization !== undefined) void reply.header('cache-control', 'no-store');
  });
  // Limits are per route (config.rateLimit; checkout's is per buyer). With REDIS_URL the counts live
  // in Redis, so every API process counts together; a Redis that does not answer limits nothing
  // (the per-buyer order limits in the database still hold).
  await server.register(rateLimit, {
    global: false,
    skipOnError: true,
    ...(app.rateLimitStore && { redis: app.rateLimitStore.redis as never, nameSpace: app.rateLimitStore.nameSpace }),
  });

  server.decorateRequest('principal', undefined);
  server.addHook('onRequest', async (request) => {
    request.principal = app.tokens.principalOf(request.headers.authorization, app.now());
  });

  // Who may call comes before what they sent: no token on a bearer route is 401 (and a non-admin
  // on an admin route 403) before any 400 naming fields. Public routes say so in the document
  // (`security: []`); hidden ones (health, metrics, docs) are not bearer routes.
  server.addHook('preValidation', async (request) => {
    const route = request.routeOptions;
    const schema = route.schema as { security?: unknown[]; hide?: boolean } | undefined;
    const isPublic = !route.url || schema?.hide === true || (Array.isArray(schema?.security) && schema.security.length === 0);
    if (!isPublic) {
      if (!request.principal) throw new AppError('unauthenticated');
      if (route.url!.startsWith('/admin/') && request.principal.role !== 'admin') throw new AppError('forbidden');
    }
    // Control characters, bidi overrides and lone surrogates go nowhere (a JSON body, the query, the path).
    const at = (typeof request.body === 'object' && unsafeTextAt(request.body)) || unsafeTextAt(request.query) || unsafeTextAt(request.params);
    if (at) throw new AppError('unsafe_text', { field: at });
  });

  server.setErrorHandler((error: FastifyError, request, reply) => {
    const body = errorBody(error);
    const status = ERROR_CODES[body.code].status;
    if (status >= 500) request.log.error({ err: error }, 'request failed');
    if (error instanceof InvariantViolation) app.log.error({ err: error, url: request.url }, 'invariant violated');
    void reply.status(status).send(body);
  });
  server.setNotFoundHandler((request, reply) => {
    // The URL is not echoed: it is the caller's text, of any length.
    void reply.status(404).send({ code: 'not_found', message: 'No route for this method and path.' } satisfies ErrorBody);
  });

  server.get('/health', { schema: { hide: true } }, async () => ({ status: 'ok' }));
  for (const register of modules) register(server, app);
  return server;
}

/** Every error leaves as {code, message, field?} from the one table of codes. */
export function errorBody(error: FastifyError | Error): ErrorBody {
  if (error instanceof AppError) return error.toBody();
  if (hasZodFastifySchemaValidationErrors(error)) {
    const first = error.validation[0]!;
    const path = first.instancePath.split('/').filter(Boolean);
    const keys = (first.params as { keys?: string[] }).keys;
    if (first.keyword === 'unrecognized_keys' && keys?.length) path.push(keys[0]!);
    const where = (error as FastifyError).validationContext;
    const field = where === 'headers' || where === 'params' || where === 'querystring' ? [where, ...path].join('.') : path.join('.');
    return { code: 'invalid_field', message: first.keyword === 'unrecognized_keys' ? `Unknown field ${field}; the server computes prices and totals.` : first.message, field: field || undefined } as ErrorBody;
  }
  const code = (error as FastifyError).code;
  if (code === 'FST_ERR_CTP_BODY_TOO_LARGE') return { code: 'payload_too_large', message: ERROR_CODES.payload_too_large.message };
  if (code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return { code: 'unsupported_media_type', message: ERROR_CODES.unsupported_media_type.message };
  const status = (error as FastifyError).statusCode;
  // Fastify's other 4xx (malformed JSON, a bad content length): named, and its message cut short.
  if (status !== undefined && status >= 400 && status < 500) return { code: 'invalid_request', message: error.message.slice(0, 200) };
  return { code: 'internal_error', message: ERROR_CODES.internal_error.message };
}
