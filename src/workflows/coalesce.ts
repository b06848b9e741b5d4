import { allHandlersFinished, condition, continueAsNew, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities/index.ts';
import { coalescerStateQuery, followUpRequestSignal, followUpStatusQuery, type CoalescerState, type FollowUpRequest, type FollowUpStatus } from './definitions.ts';
import { DEFAULT_COALESCER_SETTINGS, type CoalescerSettings } from './coalesce-settings.ts';
import { refreshBatches, type FollowUpTotals } from './followup.ts';
import { RETRY_FOREVER_CAPPED } from './retry.ts';

const { planFollowUpRound, completeFollowUpRound } = proxyActivities<Activities>({ startToCloseTimeout: '2 minutes', retry: RETRY_FOREVER_CAPPED });

export type { CoalescerSettings };
/** Rounds per run before continuing as new (also earlier, when the server suggests it). */
const ROUNDS_PER_RUN = 100;
/** Completed operations remembered for their callers (awaitDeletion polls for them). */
const RECENT_KEPT = 2000;

export interface CoalescerInput {
  dataSourceKey: string;
  settings?: Partial<CoalescerSettings>;
  /** Carried over by continue-as-new: requests not yet processed, and running totals. */
  queued?: FollowUpRequest[];
  /** Recently completed operations, so that callers can learn how their follow-up ended. */
  recent?: FollowUpStatus[];
  totals?: { rounds: number; operations: number; recordsProcessed: number };
}

/**
 * The follow-up of one data source's changes, coalesced: registry operations hand their work
 * lists here (signal-with-start), and after a short quiet period (bounded by a maximum wait) one
 * round rechecks, reindexes and re-caches the union of their records, each record once, and
 * remembers each operation as done (callers ask with the followUpStatus query). A burst of 200 deletions touching the same records costs one pass
 * over those records, not 200. Requests live in the workflow's history and are carried over by
 * continue-as-new, so none is lost across restarts.
 */
export async function coalesceFollowUps(input: CoalescerInput): Promise<void> {
  const settings: CoalescerSettings = { ...DEFAULT_COALESCER_SETTINGS, ...input.settings };
  const queued: FollowUpRequest[] = [...(input.queued ?? [])];
  const known = new Set(queued.map((r) => r.opId));
  let arrivals = 0;
  const state: CoalescerState = { dataSourceKey: input.dataSourceKey, queued: [], rounds: input.totals?.rounds ?? 0, operations: input.totals?.operations ?? 0, recordsProcessed: input.totals?.recordsProcessed ?? 0 };

  setHandler(followUpRequestSignal, (req) => {
    // A retried hand-off repeats its signal: hold each operation once.
    if (!req?.opId || known.has(req.opId)) return;
    known.add(req.opId);
    queued.push(req);
    arrivals += 1;
  });
  setHandler(coalescerStateQuery, () => ({ ...state, queued: queued.map((r) => r.opId) }));
  const recent = new Map<string, FollowUpStatus>((input.recent ?? []).map((r) => [r.opId, r]));
  setHandler(followUpStatusQuery, (opId: string): FollowUpStatus => {
    const p = state.processing;
    if (p?.opIds.includes(opId)) return { opId, state: 'processing', batchesTotal: p.batchesTotal, batchesDone: p.batchesDone };
    if (queued.some((r) => r.opId === opId)) return { opId, state: 'queued' };
    return recent.get(opId) ?? { opId, state: 'unknown' };
  });

  let roundsThisRun = 0;
  while (roundsThisRun < ROUNDS_PER_RUN && !workflowInfo().continueAsNewSuggested) {
    await condition(() => queued.length > 0);
    // Quiet period: wait while changes keep arriving, but no longer than maxWait in all.
    const deadline = Date.now() + settings.maxWaitMs;
    for (;;) {
      const seen = arrivals;
      const wait = Math.min(settings.quietMs, deadline - Date.now());
      if (wait <= 0 || !(await condition(() => arrivals !== seen, wait))) break;
    }

    const round = queued.splice(0);
    const opIds = round.map((r) => r.opId);
    const { workflowId, runId } = workflowInfo();
    const roundId = `${workflowId}/${runId}/${roundsThisRun}`;
    // Processing from the moment the round takes them: while the plan is made they are no longer
    // queued, and a caller asking then must not be told 'unknown'.
    state.processing = { roundId, opIds, batchesTotal: 0, batchesDone: 0, records: 0 };
    const plan = await planFollowUpRound({ roundId, opIds, dataSourceKey: input.dataSourceKey, batchSize: settings.batchSize });
    state.processing = { roundId, opIds, batchesTotal: plan.batches, batchesDone: 0, records: plan.affected };
    const totals: FollowUpTotals = { qualityChanges: {}, reindexed: 0, recached: 0 };
    await refreshBatches(plan, settings.concurrency, totals, () => (state.processing!.batchesDone += 1));
    await completeFollowUpRound({ roundId, opIds });
    for (const r of round) {
      recent.set(r.opId, { opId: r.opId, state: 'done', ...totals, coalescedWith: round.length, roundRecords: plan.affected });
      known.delete(r.opId);
    }
    for (const opId of recent.keys()) {
      if (recent.size <= RECENT_KEPT) break;
      recent.delete(opId); // oldest first (insertion order)
    }
    state.processing = undefined;
    state.rounds += 1;
    state.operations += round.length;
    state.recordsProcessed += plan.affected;
    roundsThisRun += 1;
  }
  // Signals that arrived during the last round are in `queued`: carry them over.
  await condition(allHandlersFinished);
  await continueAsNew<typeof coalesceFollowUps>({
    dataSourceKey: input.dataSourceKey,
    settings: input.settings,
    queued,
    recent: [...recent.values()],
    totals: { rounds: state.rounds, operations: state.operations, recordsProcessed: state.recordsProcessed },
  });
}
