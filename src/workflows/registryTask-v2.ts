import {
  ActivityCancellationType,
  ApplicationFailure,
  CancellationScope,
  CancelledFailure,
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
import { DataSourceKeyKey, RegistryObjectKeysKey, TaskMethodKey, TaskStatusKey } from '../shared.ts';
import { resolveScheduledFor } from '../taskmgr/duration.ts';
import { MERGED, type TaskAdmission, type TaskInfo, type TaskResult } from '../taskmgr/info.ts';
import { TaskInputError, validateTaskInput, type RunSummary, type TaskInput } from '../taskmgr/input.ts';
import { appendLogs, failureDetails, messageOf, summarisedOutput, taskMemo, timeoutMessage } from './task-helpers.ts';
import { dependantSignal, mergeUpdateV2 as mergeUpdate, prerequisiteDoneSignal, rescheduleUpdate, taskAdmissionUpdate, taskInfoQuery } from './definitions.ts';
import { RETRY_FOREVER_CAPPED } from './retry.ts';

// Short: these are quick calls, and an attempt lost with a stopped worker is retried after this long.
const remoteAdmin = proxyActivities<Activities>({ startToCloseTimeout: '15 seconds', retry: RETRY_FOREVER_CAPPED });
// The PostgreSQL-only calls as local activities: no task-queue round trip each, so a run's
// bookkeeping rides on its workflow tasks and a short recurring loop runs several times faster.
// Calls into other workflows (merge, prerequisite) stay remote: a local one would hold this
// workflow task while waiting for another workflow's.
const localAdmin = proxyLocalActivities<Activities>({ startToCloseTimeout: '15 seconds', retry: RETRY_FOREVER_CAPPED });
/**
 * Version 2 of this workflow: local admin activities and a memo that lists show without querying
 * each task. Executions started before it replay with the commands they recorded.
 */
const V2_PATCH = 'local-admin-activities-and-memo';
const admin = () => (patched(V2_PATCH) ? localAdmin : remoteAdmin);

/** A dependant rechecks its prerequisite this often even without a signal (a lost signal cannot strand it). */
const PREREQUISITE_RECHECK = '5 minutes';
const RECENT_RUNS = 20;
/** Keys shown in the RegistryObjectKeys search attribute (its size is limited); the input keeps them all. */
const MAX_KEYS_IN_SEARCH = 100;

/**
 * Version 2 of registryTask, frozen: executions started before version 3 (keys and dependants in
 * PostgreSQL, merges only into covering tasks, continue-as-new during long waits) replay and
 * finish on this code. Do not change it; delete it once no such execution is left.
 */
export async function registryTaskV2(raw: TaskInput): Promise<TaskResult> {
  const { workflowId: taskId, startTime } = workflowInfo();
  const loop = raw?.loop;
  const info: TaskInfo = {
    taskId,
    method: typeof raw?.method === 'string' ? raw.method : '',
    input: raw,
    status: 'WAITING',
    addedAt: loop?.firstAddedAt ?? startTime.toISOString(),
    logs: [],
    dependants: [],
    prerequisiteTaskId: raw?.prerequisiteTaskId,
    iteration: loop ? loop.iteration : undefined,
    recentRuns: loop?.recentRuns,
  };
  type Phase = 'admitting' | 'waiting' | 'starting' | 'running' | 'done';
  let phase = 'admitting' as Phase;
  const stillWaiting = () => phase === 'admitting' || phase === 'waiting' || phase === 'starting';
  let scheduledAt: number | undefined;
  let scheduleChanged = false;
  let prerequisiteOutcome: { status: string; error?: string } | undefined;
  const notified = new Set<string>();

  // No queue in the answer: readers describe a version-2 task (which also tells a loop between runs).
  setHandler(taskInfoQuery, () => info);
  setHandler(dependantSignal, (id: string) => {
    if (typeof id === 'string' && !info.dependants.includes(id)) info.dependants.push(id);
  });
  setHandler(prerequisiteDoneSignal, (done) => {
    if (done?.taskId === info.prerequisiteTaskId) prerequisiteOutcome = done;
  });
  setHandler(
    rescheduleUpdate,
    (scheduledFor: string) => {
      scheduledAt = resolveScheduledFor(scheduledFor, Date.now());
      info.scheduledFor = new Date(scheduledAt).toISOString();
      info.input = { ...info.input, scheduledFor };
      scheduleChanged = true;
      return info;
    },
    {
      validator: (scheduledFor: string) => {
        if (phase !== 'waiting' && phase !== 'admitting') throw new Error(`task ${taskId} is ${info.status}; only WAITING tasks can be rescheduled`);
        resolveScheduledFor(scheduledFor, Date.now()); // throws with the reason
      },
    },
  );
  setHandler(
    mergeUpdate,
    ({ registryObjectKeys }) => {
      const mine = info.input.registryObjectKeys;
      // No keys means the whole data source, which covers any keys.
      const merged = !mine || !registryObjectKeys ? undefined : [...new Set([...mine, ...registryObjectKeys])];
      info.input = { ...info.input, registryObjectKeys: merged };
      return info;
    },
    {
      validator: (_merge: { registryObjectKeys?: string[] }) => {
        if (phase !== 'waiting') throw new Error(`task ${taskId} is no longer WAITING`);
      },
    },
  );

  const setStatus = (status: TaskInfo['status']) => {
    info.status = status;
    upsertSearchAttributes([{ key: TaskStatusKey, value: status }]);
    if (patched(V2_PATCH)) upsertMemo(taskMemo(info));
  };

  // Admission: validate, check the method, take the WAITING slot of (method, data source) or merge.
  let fail: string | undefined;
  let input!: ReturnType<typeof validateTaskInput>;
  let taskOptions!: Awaited<ReturnType<Activities['describeTaskMethod']>>;
  const admission: Promise<TaskAdmission> = (async () => {
    try {
      input = validateTaskInput(raw, Date.now(), taskId, { textChecks: false }); // frozen: the rules it ran with
    } catch (err) {
      if (err instanceof TaskInputError) {
        fail = err.message;
        return { taskId };
      }
      throw err;
    }
    upsertSearchAttributes([
      { key: TaskMethodKey, value: input.method },
      { key: TaskStatusKey, value: 'WAITING' },
      ...(input.dataSourceKey ? [{ key: DataSourceKeyKey, value: input.dataSourceKey }] : []),
      ...(input.registryObjectKeys?.length ? [{ key: RegistryObjectKeysKey, value: input.registryObjectKeys.slice(0, MAX_KEYS_IN_SEARCH) }] : []),
    ]);
    try {
      taskOptions = await admin().describeTaskMethod(input.method);
    } catch (err) {
      fail = messageOf(err);
      return { taskId };
    }
    scheduledAt = loop ? Date.parse(loop.nextRunAt) : input.scheduledAt;
    if (scheduledAt !== undefined) info.scheduledFor = new Date(scheduledAt).toISOString();
    info.waitingFor = [...(scheduledAt !== undefined ? ['schedule' as const] : []), ...(input.prerequisiteTaskId ? ['prerequisite' as const] : [])];
    if (patched(V2_PATCH)) upsertMemo(taskMemo(info));
    phase = 'waiting';
    for (;;) {
      const claim = await admin().claimWaitingSlot({ taskId, method: input.method, dataSourceKey: input.dataSourceKey });
      if (claim.claimed) return { taskId };
      const merged = await remoteAdmin.mergeIntoWaitingTask({ into: claim.holder, registryObjectKeys: input.registryObjectKeys });
      if (merged) return { taskId, deduplicatedInto: claim.holder };
      // The holder left WAITING between our claim and the merge: try to claim again.
    }
  })();
  setHandler(taskAdmissionUpdate, () => admission);

  let summary: RunSummary | undefined;
  try {
    // Inside the try: a cancel that arrives while the task is being admitted ends it CANCELLED too.
    const admitted = await admission;
    if (admitted.deduplicatedInto) {
      info.deduplicatedInto = admitted.deduplicatedInto;
      phase = 'done';
      setStatus(MERGED);
      await condition(allHandlersFinished);
      return { taskId, status: MERGED, deduplicatedInto: admitted.deduplicatedInto };
    }
    if (fail === undefined) {
      // Waiting: no worker slot is held; timers and signals wake us.
      while (scheduledAt !== undefined && scheduledAt > Date.now()) {
        scheduleChanged = false;
        await condition(() => scheduleChanged, scheduledAt - Date.now());
        if (scheduleChanged && patched(V2_PATCH)) upsertMemo(taskMemo(info));
      }
      if (input.prerequisiteTaskId) fail = await awaitPrerequisite(taskId, input.prerequisiteTaskId, () => prerequisiteOutcome);
      info.waitingFor = undefined;
    }
    phase = 'starting';
    await admin().releaseWaitingSlot({ taskId, method: info.method, dataSourceKey: raw?.dataSourceKey });
    if (fail !== undefined) throw ApplicationFailure.create({ message: fail, type: 'TaskRejected', nonRetryable: true });

    phase = 'running';
    info.startedAt = new Date().toISOString();
    setStatus('STARTED');
    const { runTask } = proxyActivities<Activities>({
      startToCloseTimeout: taskOptions.timeoutMs,
      // A dead worker (a task that killed its process) is noticed after this long and the attempt retried.
      heartbeatTimeout: taskOptions.heartbeatTimeoutMs ?? '30 seconds',
      cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
      retry: { ...RETRY_FOREVER_CAPPED, maximumAttempts: taskOptions.maxAttempts },
    });
    const result = await runTask({
      taskId,
      method: input.method,
      input: { registryObjectKeys: info.input.registryObjectKeys, dataSourceKey: input.dataSourceKey, logMessage: input.logMessage },
    });
    appendLogs(info, result.logs);
    info.attempts = result.attempt;
    info.output = result.output;
    finish(info, 'COMPLETED', setStatus);
  } catch (err) {
    const cancelled = isCancellation(err);
    if (stillWaiting()) {
      // Cancelled while WAITING: free the (method, data source) slot so later adds are not merged into us.
      await CancellationScope.nonCancellable(() => admin().releaseWaitingSlot({ taskId, method: info.method, dataSourceKey: raw?.dataSourceKey }));
    }
    const details = failureDetails(err);
    appendLogs(info, details?.logs ?? []);
    if (details?.attempt) info.attempts = details.attempt;
    info.error = cancelled ? 'cancelled' : (timeoutMessage(err, taskOptions) ?? messageOf(err));
    finish(info, cancelled ? 'CANCELLED' : 'FAILED', setStatus);
    summary = {
      iteration: info.iteration ?? 0,
      status: info.status as RunSummary['status'],
      startedAt: info.startedAt,
      completedAt: info.completedAt!,
      error: info.error,
    };
    if (cancelled || !input?.recurMs) {
      await CancellationScope.nonCancellable(() => notifyDependants(info, notified));
      await condition(allHandlersFinished);
      throw err instanceof ApplicationFailure || cancelled ? err : ApplicationFailure.create({ message: info.error, type: 'TaskFailed', nonRetryable: true });
    }
  }
  phase = 'done';
  await notifyDependants(info, notified);
  summary ??= {
    iteration: info.iteration ?? 0,
    status: 'COMPLETED',
    startedAt: info.startedAt,
    completedAt: info.completedAt!,
    output: summarisedOutput(info.output),
  };

  if (input.recurMs) {
    // A failed run is recorded and the loop goes on; each run is a new execution, so history stays small.
    try {
      await condition(allHandlersFinished);
      // A cancel that came while this run was finishing stops the loop instead of being carried over.
      if (CancellationScope.current().consideredCancelled) throw new CancelledFailure('cancelled');
    } catch (err) {
      if (!isCancellation(err)) throw err;
      info.error = 'cancelled';
      finish(info, 'CANCELLED', setStatus);
      throw err;
    }
    const { loop: _previous, scheduledFor: _first, ...rest } = info.input;
    return continueAsNew<typeof registryTaskV2>({
      ...rest,
      loop: {
        iteration: (info.iteration ?? 0) + 1,
        firstAddedAt: info.addedAt,
        nextRunAt: new Date(Date.parse(info.completedAt!) + input.recurMs).toISOString(),
        recentRuns: [summary, ...(info.recentRuns ?? [])].slice(0, RECENT_RUNS),
      },
    });
  }
  await condition(allHandlersFinished);
  return { taskId, status: 'COMPLETED', output: info.output };
}

/** Waits for the prerequisite to end; returns a failure reason unless it COMPLETED. */
async function awaitPrerequisite(
  taskId: string,
  prerequisiteId: string,
  signalled: () => { status: string; error?: string } | undefined,
): Promise<string | undefined> {
  for (;;) {
    const state = signalled() ?? (await remoteAdmin.registerWithPrerequisite({ prerequisiteTaskId: prerequisiteId, dependantTaskId: taskId }));
    if (state.status === 'COMPLETED') return undefined;
    if (state.status === 'NOT_FOUND') return `prerequisite task ${prerequisiteId} does not exist`;
    if (state.status === 'CYCLE') return `prerequisite task ${prerequisiteId} leads back to this task (${state.error})`;
    if (state.status !== 'WAITING' && state.status !== 'STARTED') {
      return `prerequisite task ${prerequisiteId} is ${state.status}${state.error ? `: ${state.error}` : ''}`;
    }
    await condition(() => signalled() !== undefined, PREREQUISITE_RECHECK);
  }
}

function finish(info: TaskInfo, status: 'COMPLETED' | 'FAILED' | 'CANCELLED', setStatus: (s: TaskInfo['status']) => void) {
  info.completedAt = new Date().toISOString();
  if (info.startedAt) info.durationMs = Date.parse(info.completedAt) - Date.parse(info.startedAt);
  setStatus(status);
}

/** Tells every dependant how this task ended, including ones that register while we notify. */
async function notifyDependants(info: TaskInfo, notified: Set<string>) {
  for (;;) {
    const next = info.dependants.filter((d) => !notified.has(d));
    if (next.length === 0) return;
    for (const id of next) {
      notified.add(id);
      try {
        await getExternalWorkflowHandle(id).signal(prerequisiteDoneSignal, { taskId: info.taskId, status: info.status, error: info.error });
      } catch {
        // The dependant is gone (cancelled, flushed): nothing waits for us there.
      }
    }
  }
}
