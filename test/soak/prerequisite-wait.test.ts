/**
 * 30 days of a dependant's rechecks at the default interval (TASK_PREREQUISITE_RECHECK, 1 hour:
 * 720 rechecks) in compressed time, with the default history limit: every run stays under it.
 */
import { describe, it } from 'node:test';
import { runLongWait } from '../prerequisite-wait.ts';

const RECHECKS = Number(process.env.SOAK_RECHECKS ?? 30 * 24);

describe('30 days of waiting for a prerequisite', () => {
  it(`${RECHECKS} rechecks keep every run's history under 1,000 events`, { timeout: 20 * 60_000 }, () =>
    runLongWait({ rechecks: RECHECKS, historyLimit: 1000, recheck: '10 milliseconds', timeoutMs: 15 * 60_000 }),
  );
});
