/**
 * Runs `pass` again and again: at once after a pass that did work, after `idle_ms`
 * after one that found nothing, at once when kicked. Never two passes at a time.
 */
export interface PollingLoop {
  kick(): void;
  /** Runs passes until one finds nothing to do (at most MAX_DRAIN_PASSES). */
  drain(): Promise<number>;
  /** Units of work done by all passes so far. */
  workDone(): number;
  stop(): Promise<void>;
}

export const MAX_DRAIN_PASSES = 1000;

export function pollingLoop(pass: () => Promise<number>, idle_ms: number, onError: (error: unknown) => void): PollingLoop {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let current: Promise<number> = Promise.resolve(0);
  // A kick during a pass means work may have arrived after the pass looked.
  let kicked = false;

  // Work done by every pass, background ones included: a drain counts what finished
  // while it ran, even in a pass that was already under way when it began.
  let workDone = 0;

  const runOnce = (): Promise<number> => {
    const next = current
      .catch(() => 0)
      .then(() => pass())
      .then((n) => {
        workDone += n;
        return n;
      });
    current = next;
    return next;
  };

  const schedule = (delay_ms: number): void => {
    if (stopped) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(tick, delay_ms);
    timer.unref?.();
  };

  const tick = (): void => {
    timer = undefined;
    kicked = false;
    runOnce().then(
      (done) => schedule(done > 0 || kicked ? 0 : idle_ms),
      (error) => {
        onError(error);
        schedule(idle_ms);
      },
    );
  };

  schedule(0);
  return {
    kick: () => {
      if (stopped) return;
      if (timer) schedule(0);
      else kicked = true;
    },
    drain: async () => {
      const before = workDone;
      for (let i = 0; i < MAX_DRAIN_PASSES; i++) {
        if ((await runOnce()) === 0) return workDone - before;
      }
      throw new Error('drain did not settle');
    },
    workDone: () => workDone,
    stop: async () => {
      stopped = true;
      if (timer) clearTimeout(timer);
      await current.catch(() => 0);
    },
  };
}
