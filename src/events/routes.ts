import { z } from 'zod';
import { pathId, paramInt } from '../platform/http/inputs.ts';
import { authorize } from '../platform/http/auth.ts';
import type { RouteModule } from '../platform/http/server.ts';
import { listDeadLetters, MAX_DEAD_LETTERS_PAGE, replayDeadLetter, type DeadLetter } from './dead-letters.ts';
import type { EventBus } from './relay.ts';
import type { EventsDb } from './tables.ts';

/** What the dead-letter routes use of the app: the bus whose consumers replay, and its database. */
export interface EventRouteDeps {
  db: EventsDb;
  bus: EventBus;
  now: () => number;
}

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

function deadLetterView(d: DeadLetter) {
  return {
    id: d.id,
    consumer: d.consumer,
    eventId: d.eventId,
    eventType: d.eventType,
    aggregateId: d.aggregateId,
    payload: d.payload,
    eventCreatedAt: iso(d.event_created_at_ms),
    attempts: d.attempts,
    lastError: d.lastError,
    deadAt: iso(d.dead_at_ms),
    replayedAt: iso(d.replayed_at_ms),
  };
}

/** Events a consumer gave up on after its last attempt, and their replay. */
export const eventRoutes: RouteModule<EventRouteDeps> = (server, app) => {
  server.get(
    '/admin/dead-letters',
    {
      schema: {
        summary: 'Dead letters: events a consumer failed on after its last attempt, newest first',
        tags: ['events'],
        querystring: z.object({
          state: z.enum(['open', 'replayed', 'all']).default('open'),
          consumer: z.string().max(64).optional(),
          limit: paramInt(1, MAX_DEAD_LETTERS_PAGE).default(50),
        }),
      },
    },
    async (request) => {
      authorize(request, 'admin');
      return { deadLetters: (await listDeadLetters(app.db, request.query)).map(deadLetterView) };
    },
  );

  server.post(
    '/admin/dead-letters/:id/replay',
    { schema: { summary: 'Run the consumer on the dead event again (once: its inbox skips what it already did)', tags: ['events'], params: z.object({ id: pathId }) } },
    async (request) => {
      authorize(request, 'admin');
      const { deadLetter, outcome } = await replayDeadLetter(app.bus, request.params.id, app.now());
      return { outcome, deadLetter: deadLetterView(deadLetter) };
    },
  );
};
