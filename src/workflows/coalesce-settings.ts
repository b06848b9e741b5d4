/** How a data source's coalescer groups changes into rounds. */
export interface CoalescerSettings {
  /** A round starts once no change has arrived for this long... */
  quietMs: number;
  /** ...or this long after the first change it holds, whichever comes first. */
  maxWaitMs: number;
  batchSize: number;
  concurrency: number;
}

export const DEFAULT_COALESCER_SETTINGS: CoalescerSettings = { quietMs: 300, maxWaitMs: 3000, batchSize: 500, concurrency: 2 };

/**
 * A coalescer's workflow task timeout (the server's default is 10 s). Every deletion wakes the
 * coalescer with a signal, and a run stalled for a while (its worker gone, a long round) meets them
 * all in one workflow task: at the server's limit, 10,000 signals, that task took 5 to 6.5 s on two
 * busy cores (test/integration/coalescer-signal-limit.test.ts), too close to 10 s.
 */
export const COALESCER_TASK_TIMEOUT = '30 seconds';

/** deleteRecord and registryOperation hand their follow-up to the coalescer from this version on. */
export const COALESCE_PATCH = 'coalesced-follow-up';
