/**
 * Runs `pass` again and again: soon after a pass that did work, after `idle_ms`
 * after one that found nothing, soon after a kick. Never two passes at a time.
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

/**
 * `batch_ms`: after a kick or a pass that found work, wait this long before the next pass so
 * that work arriving meanwhile is taken in one batch instead of one pass per item.
 */
export function pollingLoop(pass: () => Promise<number>, timing: { idle_ms: number; batch_ms: number }, onError: (error: unknown) => void): PollingLoop {
  const { idle_ms, batch_ms } = timing;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let timerDue_ms = 0;
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
    timerDue_ms = Date.now() + delay_ms;
    timer = setTimeout(tick, delay_ms);
    timer.unref?.();
  };

  const tick = (): void => {
    timer = undefined;
    kicked = false;
    runOnce().then(
      (done) => schedule(done > 0 || kicked ? batch_ms : idle_ms),
      (error) => {
        onError(error);
        schedule(idle_ms);
      },
    );
  };

  schedule(batch_ms);
  return {
    kick: () => {
      if (stopped) return;
      if (!timer) kicked = true;
      else if (timerDue_ms > Date.now() + batch_ms) schedule(batch_ms);
    },
    drain: async () => {
      const before = workDone;
      for (let i = 0; i < MAX_DRAIN_PASSES; i++) {
        if ((await runOnce()) === 0) return workDone - before;
      }
      throw new Error('drain did not go quiet');
    },
    workDone: () => workDone,
    stop: async () => {
      stopped = true;
      if (timer) clearTimeout(timer);
      await current.catch(() => 0);
    },
  };
}
