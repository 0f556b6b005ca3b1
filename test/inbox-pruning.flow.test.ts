import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INBOX_RETENTION_MS, MAX_PRUNED_PER_PASS, pruneInbox } from '../src/events/inbox.ts';
import { availableEngines } from './support/engines.ts';
import { startHarness, type Harness } from './support/harness.ts';

/** The event inbox stays bounded: rows older than any redelivery go, oldest first, a bounded number at a time; the rest stay. */
for (const engine of availableEngines()) {
  describe(`event inbox pruning on ${engine.name}`, () => {
    let h: Harness;
    beforeAll(async () => {
      h = await startHarness(engine);
    });
    afterAll(async () => h?.close());

    it('deletes only rows past the retention, at most the limit per call', async () => {
      const now = h.clock.now();
      const old = now - INBOX_RETENTION_MS - 1_000;
      const rows = [
        ...Array.from({ length: 5 }, (_, i) => ({ consumer: 'test.old', event_id: `old-${i}`, handled_at_ms: old - i })),
        ...Array.from({ length: 3 }, (_, i) => ({ consumer: 'test.recent', event_id: `recent-${i}`, handled_at_ms: now - i })),
      ];
      await h.app.db.insertInto('event_inbox').values(rows).execute();
      const before = now - INBOX_RETENTION_MS;
      expect(await pruneInbox(h.app.db, before, 3)).toBe(3);
      expect(await pruneInbox(h.app.db, before, 3)).toBe(2);
      expect(await pruneInbox(h.app.db, before, 3)).toBe(0);
      const left = await h.app.db.selectFrom('event_inbox').select('event_id').where('consumer', 'in', ['test.old', 'test.recent']).orderBy('event_id').execute();
      expect(left.map((r) => r.event_id)).toEqual(['recent-0', 'recent-1', 'recent-2']);
    });

    it('a pass prunes MAX_PRUNED_PER_PASS rows by default: that many in one pass, one more is left for the next', async () => {
      const now = h.clock.now();
      const old = now - INBOX_RETENTION_MS - 1_000;
      const before = now - INBOX_RETENTION_MS;
      const insertOld = async (prefix: string, count: number) => {
        for (let done = 0; done < count; done += 500) {
          const batch = Array.from({ length: Math.min(500, count - done) }, (_, i) => ({ consumer: 'test.bulk', event_id: `${prefix}-${done + i}`, handled_at_ms: old - done - i }));
          await h.app.db.insertInto('event_inbox').values(batch).execute();
        }
      };
      await insertOld('at', MAX_PRUNED_PER_PASS);
      expect(await pruneInbox(h.app.db, before)).toBe(MAX_PRUNED_PER_PASS);
      expect(await pruneInbox(h.app.db, before)).toBe(0);
      await insertOld('past', MAX_PRUNED_PER_PASS + 1);
      expect(await pruneInbox(h.app.db, before)).toBe(MAX_PRUNED_PER_PASS);
      expect(await pruneInbox(h.app.db, before)).toBe(1);
    });
  });
}
