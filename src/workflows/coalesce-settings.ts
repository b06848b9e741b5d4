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

/** deleteRecord and registryOperation hand their follow-up to the coalescer from this version on. */
export const COALESCE_PATCH = 'coalesced-follow-up';
