import {
  allHandlersFinished,
  condition,
  makeContinueAsNewFunc,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities/index.ts';
import {
  coalescerStateQuery,
  followUpRequestSignal,
  followUpStatusQuery,
  type CoalescerState,
  type FollowUpRequest,
  type FollowUpStatus,
} from './definitions.ts';
import { COALESCER_TASK_TIMEOUT, DEFAULT_COALESCER_SETTINGS, type CoalescerSettings } from './coalesce-settings.ts';
import { refreshBatches, type FollowUpTotals } from './followup.ts';
import { RETRY_FOREVER_CAPPED } from './retry.ts';
import { recordFollowUpRound } from './metrics.ts';

const remote = proxyActivities<Activities>({ startToCloseTimeout: '2 minutes', retry: RETRY_FOREVER_CAPPED });
const local = proxyLocalActivities<Activities>({ startToCloseTimeout: '2 minutes', retry: RETRY_FOREVER_CAPPED });
/**
 * From this version on, a round's planning and completion (two short transactions) and a round of
 * one batch run as local activities, on the worker that holds the workflow task: a small change is
 * consistent three activity round trips sooner.
 */
const LOCAL_ROUND_PATCH = 'coalescer-local-round';
/**
 * From this version on, a wake-up signal for an operation a round of this run already claimed is
 * no arrival: one delivered while the plan ran (at a workflow task's heartbeat) leaves the queue
 * with the plan, one delivered after the round ended (a round of local activities holds one
 * workflow task, and signals wait for its end) is ignored while this run remembers its round (not
 * across continue-as-new). Before, such an operation stayed queued, was reported queued after its
 * round, and cost an empty round one quiet period later.
 */
const CLAIMED_SIGNALS_PATCH = 'coalescer-ignores-claimed-signals';

export type { CoalescerSettings };
/** Rounds per run before continuing as new (also earlier, when the server suggests it). */
const ROUNDS_PER_RUN = 100;
/** Finished operations this run remembers for callers without the database (not carried over). */
const RECENT_KEPT = 2000;

export interface CoalescerInput {
  dataSourceKey: string;
  /** Settings a caller set explicitly; the rest comes from the workers' configuration, read each round. */
  overrides?: Partial<CoalescerSettings>;
  /** The settings the last round ran with (for the first quiet period of a new run). */
  settings?: Partial<CoalescerSettings>;
  /** A round is due at once: operations were queued while the last run ended. */
  pending?: boolean;
  /** Before the queue lived in PostgreSQL: operations a run of the earlier version carried over. */
  queued?: FollowUpRequest[];
  totals?: { rounds: number; operations: number; recordsProcessed: number };
}

/**
 * The follow-up of one data source's changes, coalesced: registry operations queue themselves in
 * PostgreSQL and wake this workflow (signal-with-start); after a short quiet period (bounded by a
 * maximum wait) one round claims the queue, rechecks, reindexes and re-caches the union of the
 * operations' records, each record once, and records each operation's outcome in PostgreSQL. A
 * burst of 200 deletions touching the same records costs one pass over those records, not 200.
 * Nothing that grows with the registry's activity is carried over by continue-as-new.
 */
export async function coalesceFollowUps(input: CoalescerInput): Promise<void> {
  let settings: CoalescerSettings = { ...DEFAULT_COALESCER_SETTINGS, ...input.settings, ...input.overrides };
  // Operations signalled in this run and not yet taken by a round (progress queries; the queue itself is in PostgreSQL).
  const queued = new Set<string>((input.queued ?? []).map((r) => r.opId));
  let pending = input.pending === true || queued.size > 0;
  let arrivals = 0;
  const state: CoalescerState = {
    dataSourceKey: input.dataSourceKey,
    queued: [],
    rounds: input.totals?.rounds ?? 0,
    operations: input.totals?.operations ?? 0,
    recordsProcessed: input.totals?.recordsProcessed ?? 0,
  };
  const recent = new Map<string, FollowUpStatus>();

  setHandler(followUpRequestSignal, (req) => {
    // A retried hand-off repeats its signal: one held or in the round is no new arrival (as the
    // previous version counted them, so that its histories replay the same quiet periods).
    if (!req?.opId || queued.has(req.opId) || state.processing?.opIds.includes(req.opId)) return;
    if (recent.has(req.opId) && patched(CLAIMED_SIGNALS_PATCH)) return;
    queued.add(req.opId);
    pending = true;
    arrivals += 1;
  });
  setHandler(coalescerStateQuery, () => ({ ...state, queued: [...queued] }));
  setHandler(followUpStatusQuery, (opId: string): FollowUpStatus => {
    const p = state.processing;
    if (p?.opIds.includes(opId)) return { opId, state: 'processing', batchesTotal: p.batchesTotal, batchesDone: p.batchesDone };
    if (queued.has(opId)) return { opId, state: 'queued' };
    // While awake, deletions queue without a signal: one not seen yet waits for the next round.
    // (One forgotten long ago is then reported queued until this run sleeps: a late answer, not a wrong one.)
    return recent.get(opId) ?? { opId, state: state.processing || pending ? 'queued' : 'unknown' };
  });

  let roundsThisRun = 0;
  while (roundsThisRun < ROUNDS_PER_RUN && !workflowInfo().continueAsNewSuggested) {
    await condition(() => pending);
    await quietPeriod(settings, () => arrivals);
    pending = false;
    const { workflowId, runId } = workflowInfo();
    const roundId = `${workflowId}/${runId}/${roundsThisRun}`;
    const named = [...queued];
    // Processing from the moment the round takes them: while the plan is made they are no longer
    // queued, and a caller asking then must not be told 'unknown'.
    state.processing = { roundId, opIds: named, batchesTotal: 0, batchesDone: 0, records: 0 };
    const bookkeeping = patched(LOCAL_ROUND_PATCH) ? local : remote;
    const plan = await bookkeeping.planFollowUpRound({ roundId, opIds: named, dataSourceKey: input.dataSourceKey, overrides: input.overrides });
    settings = plan.settings ?? settings;
    const opIds = plan.opIds ?? named;
    // Named and not claimed: already done (a late repeat) or claimed by a round before; not queued any more.
    for (const opId of named) queued.delete(opId);
    // Signals during the plan were all that could set `pending` since the round began.
    if (forgetClaimedWhilePlanning(queued, opIds)) pending = queued.size > 0;
    state.processing = { roundId, opIds, batchesTotal: plan.batches, batchesDone: 0, records: plan.affected };
    const totals: FollowUpTotals = { qualityChanges: {}, reindexed: 0, recached: 0 };
    await refreshBatches(plan, settings.concurrency, totals, () => (state.processing!.batchesDone += 1), bookkeeping === local);
    // Deletions queued while the round ran did not signal (the round marked this coalescer awake):
    // the completion looks for them before this run sleeps. (Histories from before recorded no answer.)
    const completion = await bookkeeping.completeFollowUpRound({ roundId, opIds, totals, dataSourceKey: input.dataSourceKey });
    remember(recent, opIds, { ...totals, coalescedWith: opIds.length, roundRecords: plan.affected });
    // More queued than one round takes, or queued unannounced: go again without waiting for a signal.
    if (plan.more || completion?.more) pending = true;
    state.processing = undefined;
    state.rounds += 1;
    state.operations += opIds.length;
    state.recordsProcessed += plan.affected;
    roundsThisRun += 1;
    recordFollowUpRound(input.dataSourceKey, plan.affected);
  }
  await condition(allHandlersFinished);
  // The timeout is given again, not left to the server (which carries the previous run's over).
  await makeContinueAsNewFunc<typeof coalesceFollowUps>({ workflowTaskTimeout: COALESCER_TASK_TIMEOUT })({
    dataSourceKey: input.dataSourceKey,
    overrides: input.overrides,
    settings,
    pending: pending || queued.size > 0,
    totals: { rounds: state.rounds, operations: state.operations, recordsProcessed: state.recordsProcessed },
  });
}

/**
 * Drops from the queue the operations signalled while the plan ran that the plan claimed (it
 * claims every queued one in PostgreSQL, not only those named); true when it dropped any. Asks for
 * the patch only when there are such operations: other new histories carry no marker, and the
 * code before the patch can still replay them (a rollback of a deploy).
 */
function forgetClaimedWhilePlanning(queued: Set<string>, claimed: string[]): boolean {
  const claimedWhilePlanning = claimed.filter((opId) => queued.has(opId));
  if (claimedWhilePlanning.length === 0 || !patched(CLAIMED_SIGNALS_PATCH)) return false;
  for (const opId of claimedWhilePlanning) queued.delete(opId);
  return true;
}

/** Waits while changes keep arriving, but no longer than maxWait in all. */
async function quietPeriod(settings: CoalescerSettings, arrivals: () => number) {
  const deadline = Date.now() + settings.maxWaitMs;
  for (;;) {
    const seen = arrivals();
    const wait = Math.min(settings.quietMs, deadline - Date.now());
    if (wait <= 0 || !(await condition(() => arrivals() !== seen, wait))) return;
  }
}

/** Keeps the outcome of a round's operations for this run's callers, the oldest dropped first. */
function remember(recent: Map<string, FollowUpStatus>, opIds: string[], outcome: Omit<FollowUpStatus, 'opId' | 'state'>) {
  for (const opId of opIds) recent.set(opId, { opId, state: 'done', ...outcome });
  for (const opId of recent.keys()) {
    if (recent.size <= RECENT_KEPT) break;
    recent.delete(opId);
  }
}
