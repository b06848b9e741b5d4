/**
 * Runs `job` now and every interval, in the background: a run still going when the next is due is
 * not doubled (a slow database), and a failed run is reported and retried at the next interval.
 */
export function every(intervalMs: number, job: () => Promise<void>, onFailure: (err: Error) => void): { stop(): void } {
  let running = false;
  const tick = () => {
    if (running) return;
    running = true;
    job()
      .catch(onFailure)
      .finally(() => (running = false));
  };
  tick();
  const timer = setInterval(tick, intervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
