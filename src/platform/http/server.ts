import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import Fastify, { LogController, type FastifyError, type FastifyInstance } from 'fastify';
import { hasZodFastifySchemaValidationErrors, jsonSchemaTransform, serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import type { App } from '../../app.ts';
import { AppError, ERROR_CODES, InvariantViolation, type ErrorBody } from '../errors.ts';
import './auth.ts';

/** Largest request body accepted, in bytes. */
export const MAX_BODY_BYTES = 64 * 1024;

export type Server = FastifyInstance<any, any, any, any, ZodTypeProvider>;
export type RouteModule = (server: Server, app: App) => void;

export async function buildServer(app: App, modules: RouteModule[], options: { logger?: boolean } = {}): Promise<Server> {
  const server = Fastify({
    // Requests log through the app's own pino, so each request's lines (and the domain lines the
    // routes log with request.log) carry its reqId; without `logger` the per-request lines are left out.
    // A silent app logs nothing, so its requests get Fastify's no-op logger, not a child logger each.
    ...(app.log.level === 'silent' ? {} : { loggerInstance: app.log, logController: new LogController({ disableRequestLogging: !options.logger }) }),
    bodyLimit: MAX_BODY_BYTES,
    // Request ids come from the caller when it sends one, so logs join across services.
    requestIdHeader: 'x-request-id',
    ajv: { customOptions: { removeAdditional: false } },
  }).withTypeProvider<ZodTypeProvider>();
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
  // Limits are per route (config.rateLimit; checkout's is per buyer). With REDIS_URL the counts live
  // in Redis, so every API process counts together; a Redis that does not answer limits nothing
  // (the per-buyer order limits in the database still hold).
  await server.register(rateLimit, {
    global: false,
    skipOnError: true,
    ...(app.flashSale && { redis: app.flashSale.redis, nameSpace: `${app.flashSale.keyPrefix}rate-limit:` }),
  });

  server.decorateRequest('principal', undefined);
  server.addHook('onRequest', async (request) => {
    request.principal = app.tokens.principalOf(request.headers.authorization, app.now());
  });

  server.setErrorHandler((error: FastifyError, request, reply) => {
    const body = errorBody(error);
    const status = ERROR_CODES[body.code].status;
    if (status >= 500) request.log.error({ err: error }, 'request failed');
    if (error instanceof InvariantViolation) app.log.error({ err: error, url: request.url }, 'invariant violated');
    void reply.status(status).send(body);
  });
  server.setNotFoundHandler((request, reply) => {
    void reply.status(404).send({ code: 'not_found', message: `No route ${request.method} ${request.url.split('?')[0]}.` } satisfies ErrorBody);
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
  if (status !== undefined && status >= 400 && status < 500) return { code: 'invalid_request', message: error.message };
  return { code: 'internal_error', message: ERROR_CODES.internal_error.message };
}
