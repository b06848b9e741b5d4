/** Activities that bring derived state (quality, index, cache) up to date, one batch at a time. */
import { Context } from '@temporalio/activity';
import { withTransaction, type Pool, type Queryable } from '../db/pool.ts';
import { followUpBatch, roundTraceCarriers } from '../registry/operations.ts';
import { inTraceOf, tracingOn } from '../telemetry/tracing.ts';
import {
  addRefreshResults,
  lockRecords,
  NO_REFRESH,
  recheckQuality,
  refreshDerived,
  reindexRecords,
  regenerateCache,
  withRecordsLocked,
  type RefreshResult as DerivedRefresh,
} from '../registry/derived.ts';
import { stepWithQuarantine } from '../registry/quarantine.ts';
import type { FollowUpBatchResult } from '../shared.ts';
import { eachFailingFastOnBadData } from './failures.ts';

export interface BatchRef {
  opId: string;
  batchNo: number;
}

export interface RefreshResult extends DerivedRefresh {
  /** Records of the batch put in quarantine (PostgreSQL refused their derived state). */
  quarantined?: number;
}

/** A batch run as a local activity (a coalescer's one-batch round) has no heartbeat: the worker holding its workflow task runs it. */
function heartbeatIfRemote(details: unknown): void {
  const context = Context.current();
  if (!context.info.isLocal) context.heartbeat(details);
}

export const createDerivedActivities = (deps: { pool: Pool }) => {
  // The batch's ids are read from the operation's work list: payloads carry references, not keys.
  const run = async (ref: BatchRef, step: (tx: Queryable, ids: readonly number[]) => Promise<FollowUpBatchResult>) => {
    const ids = await followUpBatch(deps.pool, ref.opId, ref.batchNo);
    heartbeatIfRemote({ batchNo: ref.batchNo, records: ids.length });
    return withRecordsLocked(deps.pool, ids, step);
  };
  // Data PostgreSQL refuses outside refreshBatch's quarantined step fails at once, not retried for ever.
  return eachFailingFastOnBadData({
    /** Recomputes the quality levels of one follow-up batch. */
    async recheckQualityBatch(ref: BatchRef): Promise<FollowUpBatchResult> {
      return run(ref, recheckQuality);
    },
    /** Rebuilds the search index entries of one follow-up batch. */
    async reindexBatch(ref: BatchRef): Promise<FollowUpBatchResult> {
      return run(ref, reindexRecords);
    },
    /**
     * All three for one batch in one transaction (the coalescer's step): one round trip and one
     * commit instead of three, and a batch's derived state changes all at once. The batch's
     * result is kept in the same transaction, so a repeat (a worker lost after the commit, or a
     * second attempt racing the first) returns the first run's figures instead of zeros.
     */
    async refreshBatch(ref: BatchRef): Promise<RefreshResult> {
      // Traced: the batch's work (its SQL) joins the trace of the call that queued the oldest of
      // the round's operations and links the others' (the activity's own span is the coalescer's).
      const carriers = tracingOn() ? await roundTraceCarriers(deps.pool, ref.opId) : [];
      return inTraceOf(carriers, 'follow-up batch', { 'registry.round_id': ref.opId, 'registry.batch_no': ref.batchNo }, () => refreshOneBatch(deps.pool, ref));
    },
    /** Regenerates the cached renderings of one follow-up batch. */
    async regenerateCacheBatch(ref: BatchRef): Promise<FollowUpBatchResult> {
      return run(ref, regenerateCache);
    },
  });
};

/** refreshBatch's work: claim the batch, refresh its records' derived state, keep the result; one transaction. */
function refreshOneBatch(pool: Pool, ref: BatchRef): Promise<RefreshResult> {
  return withTransaction(pool, async (tx) => {
    // Claim the batch: a concurrent attempt waits here until this transaction ends. An
    // operation already removed (retention) has no work list left: nothing to claim or do.
    const claim = await tx.query(
      `INSERT INTO followup_batch_results (op_id, batch_no)
       SELECT $1, $2 WHERE EXISTS (SELECT 1 FROM registry_operations WHERE op_id = $1)
       ON CONFLICT DO NOTHING`,
      [ref.opId, ref.batchNo],
    );
    if (claim.rowCount === 0) {
      const done = await tx.query<{ result: RefreshResult | null }>('SELECT result FROM followup_batch_results WHERE op_id = $1 AND batch_no = $2', [
        ref.opId,
        ref.batchNo,
      ]);
      if (done.rows[0]?.result) return done.rows[0].result;
    }
    const ids = await followUpBatch(tx, ref.opId, ref.batchNo);
    heartbeatIfRemote({ batchNo: ref.batchNo, records: ids.length });
    await lockRecords(tx, ids);
    // A record PostgreSQL refuses is quarantined; the rest of the batch goes on.
    const { result: refreshed, quarantined } = await stepWithQuarantine(tx, ids, refreshDerived, addRefreshResults, NO_REFRESH, ref.opId);
    const result: RefreshResult = { ...refreshed, records: ids.length, ...(quarantined.length ? { quarantined: quarantined.length } : {}) };
    await tx.query('UPDATE followup_batch_results SET result = $3 WHERE op_id = $1 AND batch_no = $2', [ref.opId, ref.batchNo, JSON.stringify(result)]);
    return result;
  });
}
