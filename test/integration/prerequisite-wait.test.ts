/** A long prerequisite wait continues as new and sends no signal per recheck (the 30-day run is in test/soak). */
import { describe, it } from 'node:test';
import { runLongWait } from '../prerequisite-wait.ts';

describe('a long prerequisite wait', () => {
  it('continues as new before its history grows, and never signals the prerequisite per recheck', { timeout: 120_000 }, () =>
    runLongWait({ rechecks: 60, historyLimit: 100, recheck: '10 milliseconds', timeoutMs: 90_000 }),
  );
});
