import { z } from 'zod';
import { paramInt } from '../platform/http/inputs.ts';
import { assertBuyersExist } from '../buyers/index.ts';
import { authorize, subjectId } from '../platform/http/auth.ts';
import type { RouteModule } from '../platform/http/server.ts';
import { grantPoints, MAX_JOURNAL_PAGE, pointsAccount, pointsJournal, POINTS_POLICY } from './points.ts';
import type { Kysely } from 'kysely';
import type { BuyersTables } from '../buyers/index.ts';
import type { OutboxTables } from '../events/index.ts';
import type { JobsTables } from '../jobs/index.ts';
import type { PointsTables } from './tables.ts';

/** What the points routes use of the app: points, and the buyers they belong to. */
export interface PointsRouteDeps {
  db: Kysely<PointsTables & BuyersTables & OutboxTables & JobsTables>;
  now: () => number;
}

export const pointsRoutes: RouteModule<PointsRouteDeps> = (server, app) => {
  server.get(
    '/points',
    { schema: { summary: "The buyer's points and their journal, newest first", tags: ['points'], querystring: z.object({ limit: paramInt(1, MAX_JOURNAL_PAGE).default(20) }) } },
    async (request) => {
      const buyerId = subjectId(authorize(request, 'buyer'));
      return { ...(await pointsAccount(app.db, buyerId)), policy: POINTS_POLICY, journal: await pointsJournal(app.db, buyerId, request.query.limit) };
    },
  );
  server.post(
    '/admin/points/grants',
    {
      schema: {
        summary: 'Grant points to a buyer; the grantId makes a repeat harmless',
        tags: ['admin'],
        body: z.object({ buyerId: z.number().int().positive(), points: z.number().int().min(1).max(100_000_000), grantId: z.string().min(1).max(64), note: z.string().max(200).default('') }).strict(),
      },
    },
    async (request, reply) => {
      authorize(request, 'admin');
      const b = request.body;
      await assertBuyersExist(app.db, [b.buyerId], 'buyerId');
      await grantPoints(app.db, b.buyerId, b.points, b.grantId, b.note, app.now());
      return reply.status(201).send(await pointsAccount(app.db, b.buyerId));
    },
  );
};
