import {
  ActivityCancellationType,
  ApplicationFailure,
  CancellationScope,
  CancelledFailure,
  ContinueAsNew,
  allHandlersFinished,
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  isCancellation,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  upsertMemo,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities/index.ts';
import { DataSourceKeyKey, keysForSearchAttribute, MERGE_WINDOW_MS, taskRunQueue, RegistryObjectKeysKey, TaskMethodKey, TaskStatusKey } from '../shared.ts';
import { resolveScheduledFor } from '../taskmgr/duration.ts';
import { MERGED, type TaskAdmission, type TaskInfo, type TaskResult } from '../taskmgr/info.ts';
import { TaskInputError, validateTaskInput, type RunSummary, type TaskInput } from '../taskmgr/input.ts';
import { appendLogs, failureDetails, messageOf, summarisedOutput, taskMemo, timeoutMessage } from './task-helpers.ts';
import {
  dependantSignal,
  MERGE_REFUSALS,
  mergeCoveredUpdate,
  prerequisiteDoneSignal,
  rescheduleUpdate,
  taskAdmissionUpdate,
  taskInfoQuery,
  type CoveredAdd,
} from './definitions.ts';
import { registryTaskV3 } from './registryTask-v3.ts';
import { RETRY_FOREVER_CAPPED } from './retry.ts';
import { upsertChangedSearchAttributes } from './search-attributes.ts';
import { recordTaskFinished } from './metrics.ts';

/**
 * Version 4: admission in one local activity (method, keys, slot) where there were up to three,
 * and no slot taken by a task due at once (nothing to free when it starts). It also records one
 * patch marker where version 3 recorded three (four after a merge), each with a search attribute update. Executions
 * started before it finish on registryTaskV3 (frozen, with its patches).
 */
const V4_PATCH = 'v4-one-step-admission';
/**
 * Version 5: asked first, in place of V4_PATCH (its patch marker and TemporalChangeVersion upsert
 * are the only ones), it leaves out visibility writes: the WAITING search attributes its starter
 * already set (any task added by the client), and, for a task that starts in its first workflow
 * task, the memo written at admission, which its start writes again.
 */
const V5_PATCH = 'v5-fewer-visibility-writes';

/** Control characters are refused in a task's ids, schedule and log message; a loop or a long wait going on keeps what was admitted. */
function refusesControlCharacters(raw: TaskInput): boolean {
  return !raw?.loop && !raw?.resume;
}

// PostgreSQL and describe calls: local activities, no task-queue round trip each.
const local = proxyLocalActivities<Activities>({ startToCloseTimeout: '15 seconds', retry: RETRY_FOREVER_CAPPED });
// A merge updates another workflow and waits for its worker: a local activity would hold this workflow task
// meanwhile. Prerequisite checks too: their answer then comes in a new workflow task, whose time is after
// the prerequisite's end (a local activity's answer keeps the time its workflow task started with).
const remote = proxyActivities<Activities>({ startToCloseTimeout: '30 seconds', retry: RETRY_FOREVER_CAPPED });

const RECENT_RUNS = 20;

type Phase = 'admitting' | 'waiting' | 'starting' | 'running' | 'done';
type MethodOptions = Awaited<ReturnType<Activities['describeTaskMethod']>>;
type SlotClaim = Awaited<ReturnType<Activities['admitTask']>>['claim'];
type ValidInput = ReturnType<typeof validateTaskInput>;
type PrerequisiteState = { status: string; error?: string };

/** One run's state, shared by its handlers and steps. */
interface TaskRun {
  taskId: string;
  /** Started on version 5 or later (V5_PATCH). */
  v5: boolean;
  raw: TaskInput;
  info: TaskInfo;
  phase: Phase;
  root: CancellationScope;
  /**
   * The clock for the first look at the schedule, from before the admission's local activity. Its
   * answer may reach the original run in a later workflow task (one forced by a query) but reaches a
   * replay in the task it was recorded in: a clock read after it would differ.
   */
  firstLookAt: number;
  input?: ValidInput;
  options?: MethodOptions;
  /** Why the task fails without running (bad input, unknown method, prerequisite failed). */
  fail?: string;
  scheduledAt?: number;
  rescheduled: boolean;
  scheduleChanged: boolean;
  /** A merge (an update) arrived: the wait looks at its history again. */
  mergeArrived: boolean;
  claimed: boolean;
  /** Neither scheduled nor waiting for a prerequisite: it only looks at its slot. */
  dueAtOnce?: boolean;
  /** The prerequisite's state when this task registered with it, or at the last recheck. */
  prerequisitePolled?: PrerequisiteState;
  /** How the prerequisite ended, when it said so (signal). */
  prerequisiteSignal?: PrerequisiteState;
  /** Dependants of version 2 that registered by signal; told by signal when this task ends. */
  notified: Set<string>;
}

/**
 * A named registry task, as addNewTask makes them: WAITING (for its schedule or
 * prerequisite) -> STARTED -> COMPLETED | FAILED, or CANCELLED. Started with plain JSON input by
 * the client, the CLI, the HTTP API or `temporal workflow start --type registryTask`.
 */
export async function registryTask(raw: TaskInput): Promise<TaskResult> {
  // Asked once, first: a replay of an execution from before it answers false, and V4_PATCH decides.
  const v5 = patched(V5_PATCH);
  if (!v5 && !patched(V4_PATCH)) return registryTaskV3(raw);
  const run = newRun(raw, v5);
  installHandlers(run);
  const admission = admit(run);
  setHandler(taskAdmissionUpdate, () => admission);

  let summary: RunSummary;
  try {
    // Inside the try: a cancel that arrives while the task is being admitted ends it CANCELLED too.
    const admitted = await admission;
    if (admitted.deduplicatedInto) return await endMerged(run, admitted.deduplicatedInto);
    if (run.fail === undefined && (await waitUntilDue(run)) === 'continue-as-new') return await continueWaiting(run);
    await leaveWaiting(run);
    if (run.fail !== undefined) throw ApplicationFailure.create({ message: run.fail, type: 'TaskRejected', nonRetryable: true });
    await execute(run);
    summary = {
      iteration: run.info.iteration ?? 0,
      status: 'COMPLETED',
      startedAt: run.info.startedAt,
      completedAt: run.info.completedAt!,
      output: summarisedOutput(run.info.output),
    };
  } catch (err) {
    if (err instanceof ContinueAsNew) throw err; // a long wait going on in a new run
    summary = await endUnsuccessfully(run, err);
  }
  run.phase = 'done';
  // Not cancellable: a cancel arriving now ends a loop (nextRun), after the dependants heard of this run.
  await CancellationScope.nonCancellable(() => notifyDependants(run));
  if (run.input?.recurMs) return nextRun(run, summary);
  await condition(allHandlersFinished);
  return { taskId: run.taskId, status: 'COMPLETED', output: run.info.output };
}

/**
 * What a reader sees, in one query: the task with its queue (whose it is), and a loop whose run
 * has ended but has not yet continued as new as WAITING for its next run.
 */
function shownInfo(run: TaskRun): TaskInfo {
  const shown = { ...run.info, taskQueue: workflowInfo().taskQueue };
  const status = run.info.status;
  const betweenRuns = run.phase === 'done' && run.input?.recurMs !== undefined && (status === 'COMPLETED' || status === 'FAILED');
  return betweenRuns ? { ...shown, status: 'WAITING', waitingFor: ['schedule'], lastRunStatus: status } : shown;
}

function newRun(raw: TaskInput, v5: boolean): TaskRun {
  const { workflowId: taskId, startTime } = workflowInfo();
  const loop = raw?.loop;
  const info: TaskInfo = {
    taskId,
    method: typeof raw?.method === 'string' ? raw.method : '',
    input: raw,
    status: 'WAITING',
    addedAt: raw?.resume?.addedAt ?? loop?.firstAddedAt ?? startTime.toISOString(),
    logs: [],
    dependants: [],
    prerequisiteTaskId: raw?.prerequisiteTaskId,
    iteration: loop ? loop.iteration : undefined,
    recentRuns: loop?.recentRuns,
    ...(raw?.resume?.mergedAdds ? { mergedAdds: raw.resume.mergedAdds } : {}),
  };
  const firstLookAt = Date.now();
  return {
    taskId,
    v5,
    raw,
    info,
    phase: 'admitting',
    root: CancellationScope.current(),
    firstLookAt,
    rescheduled: false,
    scheduleChanged: false,
    mergeArrived: false,
    claimed: raw?.resume?.claimed ?? false,
    notified: new Set(),
  };
}

function installHandlers(run: TaskRun) {
  setHandler(taskInfoQuery, () => shownInfo(run));
  setHandler(dependantSignal, (id: string) => {
    if (typeof id === 'string' && !run.info.dependants.includes(id)) run.info.dependants.push(id);
  });
  setHandler(prerequisiteDoneSignal, (done) => {
    if (done?.taskId === run.info.prerequisiteTaskId) run.prerequisiteSignal = done;
  });
  setHandler(
    rescheduleUpdate,
    (scheduledFor: string) => {
      run.scheduledAt = resolveScheduledFor(scheduledFor, Date.now());
      run.info.scheduledFor = new Date(run.scheduledAt).toISOString();
      run.info.input = { ...run.info.input, scheduledFor };
      run.rescheduled = true;
      run.scheduleChanged = true;
      return run.info;
    },
    {
      validator: (scheduledFor: string) => {
        if ((run.phase !== 'waiting' && run.phase !== 'admitting') || run.root.consideredCancelled) {
          throw new Error(`task ${run.taskId} is ${run.root.consideredCancelled ? 'being cancelled' : run.info.status}; only WAITING tasks can be rescheduled`);
        }
        resolveScheduledFor(scheduledFor, Date.now()); // throws with the reason
      },
    },
  );
  setHandler(
    mergeCoveredUpdate,
    () => {
      run.info.mergedAdds = (run.info.mergedAdds ?? 0) + 1;
      // Wakes the wait, so that it continues as new before its history or its updates (2,000 per run) run out.
      run.mergeArrived = true;
      return run.info;
    },
    { validator: (add: CoveredAdd) => assertCovers(run, add) },
  );
}

/** Refuses a merge this task cannot honour: it must be WAITING, stay so, and start when the add asked. */
function assertCovers(run: TaskRun, add: CoveredAdd) {
  // Typed refusals: the merging side tells "left WAITING, claim again" from "does not cover, be your own task".
  const refuse = (type: (typeof MERGE_REFUSALS)[keyof typeof MERGE_REFUSALS], message: string) =>
    ApplicationFailure.create({ type, message, nonRetryable: true });
  if (run.phase !== 'waiting' || run.root.consideredCancelled) throw refuse(MERGE_REFUSALS.notWaiting, `task ${run.taskId} is no longer WAITING`);
  if (run.input?.recurMs !== undefined) throw refuse(MERGE_REFUSALS.notCovered, `task ${run.taskId} recurs; an add never merges into a loop`);
  if ((add.prerequisiteTaskId ?? null) !== (run.input?.prerequisiteTaskId ?? null))
    throw refuse(MERGE_REFUSALS.notCovered, `task ${run.taskId} waits for another prerequisite`);
  const start = Math.max(run.scheduledAt ?? 0, Date.now());
  if (start < add.notBefore || start > add.notAfter)
    throw refuse(MERGE_REFUSALS.notCovered, `task ${run.taskId} starts at ${new Date(start).toISOString()}, not when the add asked`);
}

/** Validates, records the keys, checks the method, and takes the WAITING slot of (method, data source) or merges. */
async function admit(run: TaskRun): Promise<TaskAdmission> {
  const { taskId } = run;
  try {
    run.input = validateTaskInput(run.raw, Date.now(), taskId, { textChecks: refusesControlCharacters(run.raw) });
  } catch (err) {
    if (err instanceof TaskInputError) {
      run.fail = err.message;
      return { taskId };
    }
    throw err;
  }
  const input = run.input;
  run.dueAtOnce = input.scheduledAt === undefined && !input.prerequisiteTaskId && !input.resume && !input.loop;
  // Shown before its admission: a task whose admission retries (PostgreSQL down) is listed as WAITING meanwhile.
  if (!input.resume) {
    if (run.v5) upsertChangedSearchAttributes(searchAttributes(input));
    else upsertSearchAttributes(searchAttributes(input));
  }
  let firstClaim: SlotClaim;
  // Known before the admission's local activity: a task cancelled during it still names its keys.
  if (input.registryObjectKeys?.length) run.info.keyCount = input.registryObjectKeys.length;
  try {
    firstClaim = await admitInOneStep(run, input);
    run.info.keyCount = await countKeys(run, input);
  } catch (err) {
    run.fail = messageOf(err);
    return { taskId };
  }
  // A reschedule that came during admission wins over the input's schedule.
  if (!run.rescheduled) run.scheduledAt = input.resume ? input.resume.scheduledAt : input.loop ? Date.parse(input.loop.nextRunAt) : input.scheduledAt;
  if (run.scheduledAt !== undefined) run.info.scheduledFor = new Date(run.scheduledAt).toISOString();
  run.info.waitingFor = [...(run.scheduledAt !== undefined ? ['schedule' as const] : []), ...(input.prerequisiteTaskId ? ['prerequisite' as const] : [])];
  if (!run.v5 || !startsInThisWorkflowTask(run, firstClaim)) upsertMemo(taskMemo(run.info));
  run.phase = 'waiting';
  // Recurring tasks neither merge nor are merged into; a resumed wait keeps the slot it had.
  const admission = input.recurMs !== undefined || input.resume ? { taskId } : await claimOrMerge(run, input, firstClaim);
  // Registered before the caller hears back: from then on retention keeps the prerequisite.
  if (!admission.deduplicatedInto && input.prerequisiteTaskId) {
    run.prerequisitePolled = await remote.registerDependant({ prerequisiteTaskId: input.prerequisiteTaskId, dependantTaskId: taskId });
  }
  return admission;
}

/** Due at once with no WAITING task to merge into: it starts in this workflow task, whose start writes the memo. */
function startsInThisWorkflowTask(run: TaskRun, firstClaim: SlotClaim): boolean {
  return run.dueAtOnce === true && !run.rescheduled && run.fail === undefined && firstClaim?.claimed === false && firstClaim.holder === undefined;
}

function searchAttributes(input: ValidInput) {
  const keys = input.registryObjectKeys ?? [];
  return [
    { key: TaskMethodKey, value: input.method },
    { key: TaskStatusKey, value: 'WAITING' },
    ...(input.dataSourceKey ? [{ key: DataSourceKeyKey, value: input.dataSourceKey }] : []),
    ...(keys.length ? [{ key: RegistryObjectKeysKey, value: keysForSearchAttribute(keys) }] : []),
  ];
}

/** Checks the method, stores the input's keys and claims or looks at the slot, in one local activity. */
async function admitInOneStep(run: TaskRun, input: ValidInput): Promise<SlotClaim> {
  const merges = input.recurMs === undefined && !input.resume;
  const { options, claim } = await local.admitTask({
    taskId: run.taskId,
    method: input.method,
    dataSourceKey: input.dataSourceKey,
    keys: input.resume ? undefined : input.registryObjectKeys,
    slot: !merges ? 'none' : run.dueAtOnce ? 'look' : 'hold',
  });
  run.options = options;
  return claim;
}

/** How many keys the task names: those of its input (admission stored them), or those the client stored, checked. */
async function countKeys(run: TaskRun, input: ValidInput): Promise<number> {
  if (input.registryObjectKeys?.length) return input.registryObjectKeys.length;
  if (!input.storedKeyCount) return 0;
  if (input.resume || input.loop) return input.storedKeyCount;
  const stored = await local.countTaskKeys(run.taskId);
  if (stored !== input.storedKeyCount)
    throw new Error(`storedKeyCount is ${input.storedKeyCount} but ${stored} keys are stored for task ${run.taskId}; add large key sets through TaskClient`);
  return stored;
}

async function claimOrMerge(run: TaskRun, input: ValidInput, firstClaim: SlotClaim): Promise<TaskAdmission> {
  const { taskId } = run;
  let next = firstClaim;
  for (;;) {
    const claim = next ?? (await claimAgain(run, input));
    next = undefined;
    if (claim.claimed) {
      run.claimed = true;
      return { taskId };
    }
    if (claim.holder === undefined) {
      // Due at once and nobody waiting: it takes no slot. Rescheduled meanwhile, it waits, so it takes one.
      if (!run.rescheduled) return { taskId };
      run.dueAtOnce = false;
      continue;
    }
    const start = Math.max(run.scheduledAt ?? 0, Date.now());
    const add: CoveredAdd = {
      fromTaskId: taskId,
      prerequisiteTaskId: input.prerequisiteTaskId,
      notBefore: start - MERGE_WINDOW_MS,
      notAfter: start + MERGE_WINDOW_MS,
    };
    const outcome = await remote.mergeIfCovered({ into: claim.holder, add, addNamesKeys: (run.info.keyCount ?? 0) > 0 });
    if (outcome === 'merged') return { taskId, deduplicatedInto: claim.holder };
    // The waiting task does not cover this add: it becomes a task of its own (the slot stays with the holder).
    if (outcome === 'not-covered') return { taskId };
    // The holder left WAITING between our claim and the merge: try to claim again.
  }
}

function claimAgain(run: TaskRun, input: ValidInput): Promise<NonNullable<SlotClaim>> {
  const args = { taskId: run.taskId, method: input.method, dataSourceKey: input.dataSourceKey };
  return run.dueAtOnce ? local.admitTask({ ...args, slot: 'look' }).then((admitted) => admitted.claim!) : local.claimWaitingSlot(args);
}

/**
 * Waits (holding no worker slot) until the schedule has come and the prerequisite has
 * completed. Continues as new before the run's history grows large: a wait may last 366 days.
 */
async function waitUntilDue(run: TaskRun): Promise<'due' | 'continue-as-new'> {
  const prerequisiteId = run.input!.prerequisiteTaskId;
  const { waits } = run.options!;
  let polled = run.prerequisitePolled;
  let now = run.firstLookAt;
  let lastPoll = now;
  for (;;) {
    const prerequisite = prerequisiteId ? prerequisiteVerdict(prerequisiteId, run.prerequisiteSignal ?? polled!) : 'done';
    if (prerequisite !== 'done' && prerequisite !== 'wait') {
      run.fail = prerequisite;
      return 'due';
    }
    const untilSchedule = run.scheduledAt === undefined ? 0 : run.scheduledAt - now;
    if (untilSchedule <= 0 && prerequisite === 'done') return 'due';
    const info = workflowInfo();
    if (info.historyLength >= waits.historyLimit || info.continueAsNewSuggested) return 'continue-as-new';
    // A reschedule since the last look (during admission too) shows in the memo.
    if (run.scheduleChanged) upsertMemo(taskMemo(run.info));
    run.scheduleChanged = false;
    run.mergeArrived = false;
    const untilPoll = prerequisite === 'wait' ? waits.prerequisiteRecheckMs - (now - lastPoll) : Infinity;
    const timeout = Math.max(1, Math.min(untilSchedule > 0 ? untilSchedule : Infinity, untilPoll));
    await condition(() => run.scheduleChanged || run.mergeArrived || (prerequisite === 'wait' && run.prerequisiteSignal !== undefined), timeout);
    // Woken by a timer, a signal or an update: a workflow task of its own, whose clock replays the same.
    now = Date.now();
    if (prerequisite === 'wait' && run.prerequisiteSignal === undefined && now - lastPoll >= waits.prerequisiteRecheckMs) {
      // A safety net for a lost notification: ask, without signalling the prerequisite.
      polled = await remote.prerequisiteState(prerequisiteId!);
      now = Date.now();
      lastPoll = now;
    }
  }
}

/** 'done', 'wait', or why the dependant fails. */
function prerequisiteVerdict(prerequisiteId: string, state: PrerequisiteState): 'done' | 'wait' | string {
  if (state.status === 'COMPLETED') return 'done';
  if (state.status === 'WAITING' || state.status === 'STARTED') return 'wait';
  if (state.status === 'NOT_FOUND') return `prerequisite task ${prerequisiteId} does not exist`;
  if (state.status === 'CYCLE') return `prerequisite task ${prerequisiteId} leads back to this task (${state.error})`;
  return `prerequisite task ${prerequisiteId} is ${state.status}${state.error ? `: ${state.error}` : ''}`;
}

/** A long wait goes on in a new run with the same id: the keys stay in PostgreSQL, the slot and registration stay. */
async function continueWaiting(run: TaskRun): Promise<never> {
  await condition(allHandlersFinished);
  const { registryObjectKeys: _keys, scheduledFor: _relative, resume: _resume, storedKeyCount: _count, ...rest } = run.info.input;
  const keyCount = run.info.keyCount ?? 0;
  return continueAsNew<typeof registryTask>({
    ...rest,
    ...(keyCount ? { storedKeyCount: keyCount } : {}),
    resume: {
      addedAt: run.info.addedAt,
      scheduledAt: run.scheduledAt,
      claimed: run.claimed,
      ...(run.info.mergedAdds ? { mergedAdds: run.info.mergedAdds } : {}),
    },
  });
}

/**
 * Frees the WAITING slot and, for a one-off task, the prerequisite registration. A loop keeps its
 * registration through its runs (so retention keeps the prerequisite every later run names);
 * the loop's final end drops it (notifyDependants).
 */
async function leaveWaiting(run: TaskRun) {
  run.phase = 'starting';
  run.info.waitingFor = undefined;
  if (!run.claimed && !run.input?.prerequisiteTaskId) {
    // Nothing to free: no slot taken and no registration. A cancel that came during admission (whose
    // local activity then failed as cancelled) ends the task CANCELLED, as the skipped call would have.
    if (run.root.consideredCancelled) throw new CancelledFailure('cancelled');
    return;
  }
  await local.leaveWaiting({ taskId: run.taskId, method: run.input?.method ?? '', dataSourceKey: run.input?.dataSourceKey, ...keptRegistration(run) });
}

function keptRegistration(run: TaskRun): { keepPrerequisite?: true } {
  return run.input?.recurMs !== undefined && run.input.prerequisiteTaskId !== undefined && !run.root.consideredCancelled ? { keepPrerequisite: true } : {};
}

async function execute(run: TaskRun) {
  const input = run.input!;
  const options = run.options!;
  run.phase = 'running';
  run.info.startedAt = new Date().toISOString();
  setStatus(run, 'STARTED');
  const { runTask } = proxyActivities<Activities>({
    // Their own queue and slots: a long task never holds a slot a follow-up needs.
    taskQueue: taskRunQueue(workflowInfo().taskQueue),
    startToCloseTimeout: options.timeoutMs,
    // A dead worker (a task that killed its process) is noticed after this long and the attempt retried.
    heartbeatTimeout: options.heartbeatTimeoutMs ?? '30 seconds',
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: { ...RETRY_FOREVER_CAPPED, maximumAttempts: options.maxAttempts },
  });
  const result = await runTask({
    taskId: run.taskId,
    method: input.method,
    input: { dataSourceKey: input.dataSourceKey, logMessage: input.logMessage },
    keysStored: (run.info.keyCount ?? 0) > 0,
  });
  appendLogs(run.info, result.logs);
  run.info.attempts = result.attempt;
  run.info.output = result.output;
  finish(run, 'COMPLETED');
}

/** A failed or cancelled run: recorded; a one-off task (or a cancelled loop) ends here by throwing. */
async function endUnsuccessfully(run: TaskRun, err: unknown): Promise<RunSummary> {
  const cancelled = isCancellation(err);
  if (run.phase === 'admitting' || run.phase === 'waiting' || run.phase === 'starting') {
    // Cancelled while WAITING: free the slot (later adds must not merge into us) and the registration.
    // From the checked input only: raw input that failed its checks (a NUL, say) claimed nothing and must not reach PostgreSQL.
    await CancellationScope.nonCancellable(() =>
      local.leaveWaiting({ taskId: run.taskId, method: run.input?.method ?? '', dataSourceKey: run.input?.dataSourceKey, ...keptRegistration(run) }),
    );
  }
  const details = failureDetails(err);
  appendLogs(run.info, details?.logs ?? []);
  if (details?.attempt) run.info.attempts = details.attempt;
  run.info.error = cancelled ? 'cancelled' : (timeoutMessage(err, run.options) ?? messageOf(err));
  finish(run, cancelled ? 'CANCELLED' : 'FAILED');
  if (cancelled || !run.input?.recurMs) {
    run.phase = 'done';
    await CancellationScope.nonCancellable(() => notifyDependants(run));
    await condition(allHandlersFinished);
    throw err instanceof ApplicationFailure || cancelled ? err : ApplicationFailure.create({ message: run.info.error, type: 'TaskFailed', nonRetryable: true });
  }
  return {
    iteration: run.info.iteration ?? 0,
    status: run.info.status as RunSummary['status'],
    startedAt: run.info.startedAt,
    completedAt: run.info.completedAt!,
    error: run.info.error,
  };
}

async function endMerged(run: TaskRun, into: string): Promise<TaskResult> {
  run.info.deduplicatedInto = into;
  run.phase = 'done';
  setStatus(run, MERGED);
  await condition(allHandlersFinished);
  return { taskId: run.taskId, status: MERGED, deduplicatedInto: into };
}

/** A recurring task's next run: a new execution, so each run's history stays small. */
async function nextRun(run: TaskRun, summary: RunSummary): Promise<never> {
  try {
    await condition(allHandlersFinished);
    // A cancel that came while this run was finishing stops the loop instead of being carried over.
    if (CancellationScope.current().consideredCancelled) throw new CancelledFailure('cancelled');
  } catch (err) {
    if (!isCancellation(err)) throw err;
    run.info.error = 'cancelled';
    finish(run, 'CANCELLED');
    // No notice from here: whether a cancel is seen here or one step later differs between a run and
    // its replay (local activities). Dependants learn at their recheck; a flush drops the registration.
    throw err;
  }
  const { loop: _previous, scheduledFor: _first, resume: _resume, registryObjectKeys: _keys, storedKeyCount: _count, ...rest } = run.info.input;
  const keyCount = run.info.keyCount ?? 0;
  return continueAsNew<typeof registryTask>({
    ...rest,
    ...(keyCount ? { storedKeyCount: keyCount } : {}),
    loop: {
      iteration: (run.info.iteration ?? 0) + 1,
      firstAddedAt: run.info.addedAt,
      nextRunAt: new Date(Date.parse(run.info.completedAt!) + run.input!.recurMs!).toISOString(),
      recentRuns: [summary, ...(run.info.recentRuns ?? [])].slice(0, RECENT_RUNS),
    },
  });
}

/** Tells the dependants registered in PostgreSQL, and any of version 2 that signalled, how this task ended. */
async function notifyDependants(run: TaskRun) {
  const outcome = { taskId: run.taskId, status: run.info.status, error: run.info.error };
  // A loop's run that is not its last: later dependants wait for a later run.
  const final = !run.input?.recurMs || run.info.status === 'CANCELLED';
  // The run's end also goes to the Health view's charts (the history's marker keeps it from repeating).
  const end = run.info.completedAt
    ? { iteration: run.info.iteration ?? 0, method: run.info.method, finishedAt: run.info.completedAt, durationMs: run.info.durationMs }
    : undefined;
  await local.notifyDependants({ ...outcome, final, run: end });
  for (;;) {
    const next = run.info.dependants.filter((d) => !run.notified.has(d));
    if (next.length === 0) return;
    for (const id of next) {
      run.notified.add(id);
      await getExternalWorkflowHandle(id)
        .signal(prerequisiteDoneSignal, outcome)
        .catch(() => undefined); // the dependant is gone: nothing waits for us there
    }
  }
}

function setStatus(run: TaskRun, status: TaskInfo['status']) {
  run.info.status = status;
  upsertSearchAttributes([{ key: TaskStatusKey, value: status }]);
  upsertMemo(taskMemo(run.info));
}

function finish(run: TaskRun, status: 'COMPLETED' | 'FAILED' | 'CANCELLED') {
  run.info.completedAt = new Date().toISOString();
  if (run.info.startedAt) run.info.durationMs = Date.parse(run.info.completedAt) - Date.parse(run.info.startedAt);
  setStatus(run, status);
  recordTaskFinished(run.info.method, status, run.info.durationMs);
}
