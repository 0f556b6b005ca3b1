import { z } from 'zod';
import { pathId, paramInt } from '../platform/http/inputs.ts';
import { authorize } from '../platform/http/auth.ts';
import type { RouteModule } from '../platform/http/server.ts';
import { CHECK_NAMES } from './check.ts';
import { MAX_REPAIRS_LISTED, recentRepairs } from './repairs.ts';
import type { ConsistencyDb } from './tables.ts';

export interface ConsistencyRouteDeps {
  db: ConsistencyDb;
}

export const consistencyRoutes: RouteModule<ConsistencyRouteDeps> = (server, app) => {
  server.get(
    '/admin/consistency/repairs',
    {
      schema: {
        summary: 'What the consistency reconciler repaired, newest first; pass `next` as `before` for the following page',
        tags: ['consistency'],
        querystring: z.object({
          check: z.enum(CHECK_NAMES).optional(),
          limit: paramInt(1, MAX_REPAIRS_LISTED).default(50),
          before: pathId.optional(),
        }),
      },
    },
    async (request) => {
      authorize(request, 'admin');
      const repairs = await recentRepairs(app.db, { limit: request.query.limit, check: request.query.check, beforeId: request.query.before });
      return {
        repairs: repairs.map((r) => ({ id: r.id, check: r.check, key: r.key, action: r.action, detail: r.detail, repairedAt: new Date(r.repaired_at_ms).toISOString() })),
        next: repairs.length === request.query.limit ? repairs[repairs.length - 1]!.id : null,
      };
    },
  );
};
