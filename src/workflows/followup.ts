/** The follow-up shared by every registry operation: recheck, reindex and re-cache in batches. */
import { proxyActivities, proxyLocalActivities } from '@temporalio/workflow';
import type { Activities } from '../activities/index.ts';
import type { LevelChanges } from '../shared.ts';
import { RETRY_FOREVER_CAPPED } from './retry.ts';

const { recheckQualityBatch, reindexBatch, regenerateCacheBatch, refreshBatch } = proxyActivities<Activities>({
  startToCloseTimeout: '5 minutes',
  heartbeatTimeout: '1 minute',
  retry: RETRY_FOREVER_CAPPED,
});

// A round of one batch runs it on the worker that holds the coalescer's workflow task: one round trip less.
const local = proxyLocalActivities<Activities>({ startToCloseTimeout: '5 minutes', retry: RETRY_FOREVER_CAPPED });

export interface FollowUpTotals {
  qualityChanges: LevelChanges;
  reindexed: number;
  recached: number;
}

/** Runs the batches of one operation, `concurrency` at a time, each as recheck -> reindex -> cache. */
export async function followUp(op: { opId: string; batches: number }, concurrency: number, result: FollowUpTotals, onBatchDone: () => void) {
  let next = 0;
  const lane = async () => {
    while (next < op.batches) {
      const ref = { opId: op.opId, batchNo: next++ };
      // Quality first: the index entry and the cached rendering both carry the quality level.
      const quality = await recheckQualityBatch(ref);
      const index = await reindexBatch(ref);
      const cache = await regenerateCacheBatch(ref);
      // Add only after the awaits: `x += await f()` reads x before awaiting and loses other lanes' counts.
      addChanges(result.qualityChanges, quality.levelChanges ?? {});
      result.reindexed += index.changed;
      result.recached += cache.changed;
      onBatchDone();
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, op.batches) }, lane));
}

/** The coalescer's rounds: each batch rechecked, reindexed and re-cached by one activity, in one transaction. */
export async function refreshBatches(
  op: { opId: string; batches: number },
  concurrency: number,
  result: FollowUpTotals,
  onBatchDone: () => void,
  oneBatchLocally = false,
) {
  const refresh = oneBatchLocally && op.batches === 1 ? local.refreshBatch : refreshBatch;
  let next = 0;
  const lane = async () => {
    while (next < op.batches) {
      const r = await refresh({ opId: op.opId, batchNo: next++ });
      addChanges(result.qualityChanges, r.levelChanges);
      result.reindexed += r.reindexed;
      result.recached += r.recached;
      onBatchDone();
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, op.batches) }, lane));
}

export function addChanges(into: LevelChanges, from: LevelChanges) {
  for (const [change, n] of Object.entries(from)) into[change] = (into[change] ?? 0) + n;
}
