/** Activities that bring derived state (quality, index, cache) up to date, one batch at a time. */
import { heartbeat } from '@temporalio/activity';
import { withTransaction, type Pool } from '../db/pool.ts';
import { followUpBatch } from '../registry/operations.ts';
import { recheckQuality, reindexRecords, regenerateCache } from '../registry/derived.ts';
import type { FollowUpBatchResult, LevelChanges } from '../shared.ts';

export interface BatchRef {
  opId: string;
  batchNo: number;
}

export const createDerivedActivities = (deps: { pool: Pool }) => {
  // The batch's ids are read from the operation's work list: payloads carry references, not keys.
  const run = async (ref: BatchRef, step: (ids: number[]) => Promise<FollowUpBatchResult>) => {
    const ids = await followUpBatch(deps.pool, ref.opId, ref.batchNo);
    heartbeat({ batchNo: ref.batchNo, records: ids.length });
    return step(ids);
  };
  return {
    /** Recomputes the quality levels of one follow-up batch. */
    async recheckQualityBatch(ref: BatchRef): Promise<FollowUpBatchResult> {
      return run(ref, (ids) => recheckQuality(deps.pool, ids));
    },
    /** Rebuilds the search index entries of one follow-up batch. */
    async reindexBatch(ref: BatchRef): Promise<FollowUpBatchResult> {
      return run(ref, (ids) => reindexRecords(deps.pool, ids));
    },
    /**
     * All three for one batch in one transaction (the coalescer's step): one round trip and one
     * commit instead of three, and a batch's derived state changes all at once.
     */
    async refreshBatch(ref: BatchRef): Promise<{ records: number; levelChanges: LevelChanges; reindexed: number; recached: number }> {
      const ids = await followUpBatch(deps.pool, ref.opId, ref.batchNo);
      heartbeat({ batchNo: ref.batchNo, records: ids.length });
      return withTransaction(deps.pool, async (tx) => {
        // Quality first: the index entry and the cached rendering both carry the quality level.
        const quality = await recheckQuality(tx, ids);
        const index = await reindexRecords(tx, ids);
        const cache = await regenerateCache(tx, ids);
        return { records: ids.length, levelChanges: quality.levelChanges ?? {}, reindexed: index.changed, recached: cache.changed };
      });
    },
    /** Regenerates the cached renderings of one follow-up batch. */
    async regenerateCacheBatch(ref: BatchRef): Promise<FollowUpBatchResult> {
      return run(ref, (ids) => regenerateCache(deps.pool, ids));
    },
  };
};
