/**
 * Runs `job` now and every interval, in the background: a run still going when the next is due is
 * not doubled (a slow database), and a failed run is reported and retried at the next interval.
 */
export function every(intervalMs: number, job: () => Promise<void>, onFailure: (message: string) => void): { stop(): Promise<void> } {
  let running: Promise<void> | undefined;
  const tick = () => {
    if (running) return;
    running = job()
      .catch((err: unknown) => {
        try {
          onFailure(err instanceof Error ? err.message : String(err));
        } catch {
          // a failing report must not become an unhandled rejection
        }
      })
      .finally(() => (running = undefined));
  };
  tick();
  const timer = setInterval(tick, intervalMs);
  timer.unref();
  // Resolves once a run under way has ended: what it uses (a pool, a connection) can then be closed.
  return {
    stop: async () => {
      clearInterval(timer);
      await running;
    },
  };
}
