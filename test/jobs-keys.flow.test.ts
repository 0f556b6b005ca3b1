import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cancelDeadJobs, cancelJob, cancelJobs, hasJobs, scheduleJob, waitingJobKeys } from '../src/jobs/index.ts';
import { transact } from '../src/platform/db/retry.ts';
import { availableEngines } from './support/engines.ts';
import { startHarness, type Harness } from './support/harness.ts';

/**
 * The jobs module is the only writer of job rows: others cancel by the key they built. A prefix
 * takes exactly the keys that start with it — never a neighbour whose key merely sorts close
 * (`payment.query:P1:` must leave `payment.query:P10:…` alone) — on every engine's collation.
 */
for (const engine of availableEngines()) {
  describe(`job keys on ${engine.name}`, () => {
    let h: Harness;
    beforeAll(async () => {
      h = await startHarness(engine);
    });
    afterAll(async () => h?.close());

    const keys = ['test.kind:P1:1', 'test.kind:P1:2', 'test.kind:P10:1', 'test.kind:P1', 'test.kind;P1:1', 'test.other:P1:1'];
    const schedule = async () => {
      const now_ms = h.clock.now();
      await transact(h.app.db, async (trx) => {
        for (const key of keys) await scheduleJob(trx, { kind: 'test.kind', key, payload: {}, due_at_ms: now_ms + 3600_000 }, now_ms);
      });
    };
    const left = async () => [...(await waitingJobKeys(h.app.db, keys))].sort();

    it('cancels one job by its key, and all of a prefix and nothing beside it', async () => {
      await schedule();
      expect(await cancelJob(h.app.db, 'test.kind:P1:2')).toBe(1);
      expect(await cancelJob(h.app.db, 'test.kind:P1:2')).toBe(0); // gone already: no error
      expect(await cancelJobs(h.app.db, 'test.kind:P1:')).toBe(1);
      expect(await left()).toEqual(['test.kind:P1', 'test.kind:P10:1', 'test.kind;P1:1', 'test.other:P1:1']);
      expect(await hasJobs(h.app.db, 'test.kind:P1:')).toBe(false);
      expect(await hasJobs(h.app.db, 'test.kind:P10:')).toBe(true);
      expect(await cancelJobs(h.app.db, 'test.')).toBe(4);
      expect(await left()).toEqual([]);
    });

    it('cancels the dead jobs of a prefix only, and counts dead ones as not waiting', async () => {
      await schedule();
      await h.app.db.updateTable('jobs').set({ dead_at_ms: h.clock.now() }).where('job_key', 'in', ['test.kind:P1:1', 'test.other:P1:1']).execute();
      expect(await left()).toEqual(['test.kind:P1', 'test.kind:P10:1', 'test.kind:P1:2', 'test.kind;P1:1']);
      expect(await cancelDeadJobs(h.app.db, 'test.kind:')).toBe(1);
      expect(await hasJobs(h.app.db, 'test.other:')).toBe(true); // dead, but another prefix: kept
      expect(await cancelJobs(h.app.db, 'test.')).toBe(5);
    });

    it('refuses an empty prefix (it would mean every job)', async () => {
      await expect(cancelJobs(h.app.db, '')).rejects.toThrow(/must not be empty/);
    });
  });
}
