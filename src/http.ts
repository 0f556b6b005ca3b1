import type { App } from './app.ts';
import { accessRoutes } from './access/routes.ts';
import { cartRoutes } from './cart/routes.ts';
import { catalogRoutes } from './catalog/routes.ts';
import { checkoutRoutes } from './checkout/routes.ts';
import { consistencyRoutes } from './consistency/routes.ts';
import { couponRoutes } from './coupons/routes.ts';
import { eventRoutes } from './events/routes.ts';
import { orderRoutes } from './orders/routes.ts';
import { paymentRoutes } from './payments/routes.ts';
import { pointsRoutes } from './points/routes.ts';
import { promotionRoutes } from './promotions/routes.ts';
import { observabilityRoutes } from './platform/http/observability.ts';
import { buildServer, type Server } from './platform/http/server.ts';

// Observability first: its hooks must be in place before the routes they measure.
export const ROUTE_MODULES = [observabilityRoutes, catalogRoutes, cartRoutes, checkoutRoutes, orderRoutes, paymentRoutes, promotionRoutes, couponRoutes, pointsRoutes, eventRoutes, consistencyRoutes, accessRoutes];

export function buildHttp(app: App, options: { logger?: boolean } = {}): Promise<Server> {
  return buildServer(app, ROUTE_MODULES, options);
}

/** Listens on HOST:PORT and shuts down cleanly on SIGINT/SIGTERM. */
export async function startHttp(app: App): Promise<{ server: Server; url: string }> {
  const server = await buildHttp(app, { logger: process.env.LOG_LEVEL !== 'silent' });
  await server.listen({ port: app.config.port, host: app.config.host });
  const shutdown = async () => {
    await server.close();
    await app.close();
    process.exit(0);
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
  return { server, url: `http://${app.config.host}:${app.config.port}` };
}
