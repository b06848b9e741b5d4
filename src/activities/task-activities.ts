/** Activities of the task manager: method checks, the WAITING slot, prerequisites, running a task module. */
import { ApplicationFailure, Context } from '@temporalio/activity';
import { WorkflowNotFoundError, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import type { Pool } from '../db/pool.ts';
import { TaskClient } from '../client/task-client.ts';
import { eachFailingFastOnBadData } from './failures.ts';
import { TaskStatusKey } from '../shared.ts';
import { unknownMethodMessage, type LoadedTasks } from '../taskmgr/discovery.ts';
import type { TaskInfo } from '../taskmgr/info.ts';
import type { TaskInput } from '../taskmgr/input.ts';
import type { AddTaskOptions, TaskContext, TaskLogLine, TaskProgress } from '../taskmgr/types.ts';
import { isUpdateLimitReached } from '../client/connection.ts';
import {
  countTaskKeys,
  chainText,
  cycleThrough,
  keysCoveredBy,
  recordOutcome,
  loadTaskKeys,
  type TaskRunEnd,
  registerDependant,
  storeTaskKeys,
  unregisterDependant,
} from '../taskmgr/task-store.ts';
import {
  dependantSignal,
  MERGE_REFUSALS,
  mergeCoveredUpdate,
  mergeUpdateV2,
  prerequisiteDoneSignal,
  taskInfoQuery,
  type CoveredAdd,
} from '../workflows/definitions.ts';

/** How WAITING tasks wait; from the worker's configuration, recorded in each task's history. */
export interface TaskWaitSettings {
  /** A dependant asks its prerequisite's state this often even without a signal (a lost signal cannot strand it). */
  prerequisiteRecheckMs: number;
  /** A WAITING task continues as new once its run's history has this many events. */
  historyLimit: number;
}
export const DEFAULT_TASK_WAITS: TaskWaitSettings = { prerequisiteRecheckMs: 60 * 60_000, historyLimit: 1000 };

export interface TaskActivityDeps {
  pool: Pool;
  temporal: Client;
  taskQueue: string;
  tasks: LoadedTasks;
  waits?: TaskWaitSettings;
  /** Closed tasks and finished operations older than this are removed by maintenance (TASK_RETENTION; default 1 day). */
  taskRetentionMs?: number;
}

const MAX_OUTPUT_BYTES = 256 * 1024;
const MAX_LINE = 2000;
const CHAIN_LIMIT = 100;

/** Status of a task from its execution: the TaskStatus attribute, or NOT_FOUND. */
/** The task queue of the workflow this activity works for (activities here run on it). */
function callersQueue(): string | undefined {
  try {
    return Context.current().info.taskQueue;
  } catch {
    return undefined; // called outside an activity
  }
}

/** A task's status; any workflow that is not a registryTask on the caller's queue counts as NOT_FOUND (it is not ours to read). */
async function taskStatus(temporal: Client, taskId: string): Promise<{ status: string; running: boolean; error?: string }> {
  try {
    const d = await temporal.workflow.getHandle(taskId).describe();
    const queue = callersQueue();
    if (d.type !== 'registryTask' || (queue !== undefined && d.taskQueue !== queue)) return { status: 'NOT_FOUND', running: false };
    // A task started a moment ago may not have set TaskStatus yet: running means WAITING then.
    const status = d.typedSearchAttributes.get(TaskStatusKey) ?? (d.status.name === 'RUNNING' ? 'WAITING' : d.status.name);
    const error = typeof d.memo?.error === 'string' ? d.memo.error : undefined;
    return { status: d.status.name === 'TERMINATED' || d.status.name === 'TIMED_OUT' ? d.status.name : status, running: d.status.name === 'RUNNING', error };
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return { status: 'NOT_FOUND', running: false };
    throw err;
  }
}

const CONNECTION_ERRORS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', '57P01', '57P02', '57P03', '08000', '08001', '08003', '08004', '08006']);

/** A lost or refused PostgreSQL connection, as opposed to an error of the task's own making. */
export function databaseUnavailable(err: unknown): boolean {
  const e = err as { code?: string; message?: string } | undefined;
  if (e?.code && CONNECTION_ERRORS.has(e.code)) return true;
  // "not queryable": node-postgres refusing a query on a client whose connection broke between two queries.
  return /Connection terminated|connect ECONNREFUSED|timeout exceeded when trying to connect|the database system is (starting up|shutting down)|encountered a connection error and is not queryable/.test(
    e?.message ?? '',
  );
}

async function waitForDatabase(pool: Pool, beat: () => void, signal: AbortSignal): Promise<void> {
  for (;;) {
    if (signal.aborted) return;
    try {
      await pool.query('SELECT 1');
      return;
    } catch {
      beat();
      await new Promise((r) => setTimeout(r, 2000));
    }
  }
}

/** The running activity's cancellation signal (its worker shutting down, its task cancelled); none outside an activity. */
function activityCancellation(): AbortSignal | undefined {
  try {
    return Context.current().cancellationSignal;
  } catch {
    return undefined;
  }
}

export interface TaskMethodOptions {
  timeoutMs: number;
  maxAttempts: number;
  heartbeatTimeoutMs?: number;
  waits: TaskWaitSettings;
}

/** `claimed: false` without a holder: the slot is free, and the task (due at once) did not take it. */
export type SlotClaim = { claimed: true } | { claimed: false; holder?: string };

function describeMethod(deps: TaskActivityDeps, method: string): TaskMethodOptions {
  const def = deps.tasks.definitions.get(method);
  if (!def) throw ApplicationFailure.create({ message: unknownMethodMessage(method, deps.tasks.files), type: 'UnknownTaskMethod', nonRetryable: true });
  return { timeoutMs: def.timeoutMs, maxAttempts: def.maxAttempts ?? 3, heartbeatTimeoutMs: def.heartbeatTimeoutMs, waits: deps.waits ?? DEFAULT_TASK_WAITS };
}

/** See claimWaitingSlot. */
async function claimSlot(deps: TaskActivityDeps, args: { taskId: string; method: string; dataSourceKey?: string; hold: boolean }): Promise<SlotClaim> {
  const ds = args.dataSourceKey ?? '';
  for (;;) {
    if (args.hold) {
      const inserted = await deps.pool.query(
        `INSERT INTO task_claims (method, data_source_key, task_id) VALUES ($1, $2, $3)
         ON CONFLICT (method, data_source_key) DO NOTHING`,
        [args.method, ds, args.taskId],
      );
      if (inserted.rowCount) return { claimed: true };
    }
    const { rows } = await deps.pool.query<{ task_id: string }>('SELECT task_id FROM task_claims WHERE method = $1 AND data_source_key = $2', [
      args.method,
      ds,
    ]);
    const holder = rows[0]?.task_id;
    if (holder === undefined) {
      if (!args.hold) return { claimed: false };
      continue; // released meanwhile
    }
    if (holder === args.taskId) return { claimed: true }; // a retry of our own claim
    const state = await taskStatus(deps.temporal, holder);
    if (state.running && state.status === 'WAITING') return { claimed: false, holder };
    if (!args.hold) return { claimed: false };
    // Stale (the holder ended without releasing, e.g. terminated): take it over if still stale.
    const swapped = await deps.pool.query(
      'UPDATE task_claims SET task_id = $4, claimed_at = now() WHERE method = $1 AND data_source_key = $2 AND task_id = $3',
      [args.method, ds, holder, args.taskId],
    );
    if (swapped.rowCount) return { claimed: true };
  }
}

export const createTaskActivities = (deps: TaskActivityDeps) => {
  const client = new TaskClient(deps.temporal, deps.taskQueue, { pool: deps.pool, stopWaiting: activityCancellation });
  // Task input is checked before it reaches PostgreSQL; data it still refuses is not retried for ever.
  return eachFailingFastOnBadData({
    /** Checks that a method has an enabled, valid module; returns how to run it. */
    async describeTaskMethod(method: string): Promise<TaskMethodOptions> {
      return describeMethod(deps, method);
    },

    /**
     * A task's admission in one step (one local activity where there were three): checks its
     * method, stores the keys its input names, and takes the WAITING slot of (method, data source)
     * or names the WAITING task holding it. A task due at once (`hold: false`) only looks at the
     * slot: it is STARTED before any add could merge into it.
     */
    async admitTask(args: { taskId: string; method: string; dataSourceKey?: string; keys?: string[]; slot: 'hold' | 'look' | 'none' }): Promise<{
      options: TaskMethodOptions;
      claim?: SlotClaim;
    }> {
      const options = describeMethod(deps, args.method);
      if (args.keys?.length) await storeTaskKeys(deps.pool, args.taskId, args.keys);
      if (args.slot === 'none') return { options };
      return { options, claim: await claimSlot(deps, { ...args, hold: args.slot === 'hold' }) };
    },

    /** Stores the keys a task's input named (idempotent). */
    async storeTaskKeys(args: { taskId: string; keys: string[] }): Promise<void> {
      await storeTaskKeys(deps.pool, args.taskId, args.keys);
    },

    /** How many keys TaskClient stored for a task before starting it. */
    async countTaskKeys(taskId: string): Promise<number> {
      return countTaskKeys(deps.pool, taskId);
    },

    /**
     * Merges an add into the WAITING task `into` when that task already covers it: every key the
     * add names (a task without keys covers its whole data source), its prerequisite and its start
     * (the holder checks those itself, atomically). Otherwise the add stays its own task.
     */
    async mergeIfCovered(args: { into: string; add: CoveredAdd; addNamesKeys: boolean }): Promise<'merged' | 'not-covered' | 'not-waiting'> {
      const holderNamesKeys = (await countTaskKeys(deps.pool, args.into)) > 0;
      const covered = !holderNamesKeys || (args.addNamesKeys && (await keysCoveredBy(deps.pool, args.add.fromTaskId, args.into)));
      if (!covered) return 'not-covered';
      try {
        await deps.temporal.workflow.getHandle(args.into).executeUpdate(mergeCoveredUpdate, { args: [args.add] });
        return 'merged';
      } catch (err) {
        // A holder of the previous version has no such update: it does not cover the add either.
        if (err instanceof WorkflowUpdateFailedError)
          return err.cause instanceof ApplicationFailure && err.cause.type === MERGE_REFUSALS.notWaiting ? 'not-waiting' : 'not-covered';
        if (err instanceof WorkflowNotFoundError) return 'not-waiting';
        if (isUpdateLimitReached(err)) return 'not-covered';
        throw err;
      }
    },

    /**
     * Registers a WAITING task with its prerequisite (in PostgreSQL: the prerequisite reads its
     * dependants when it ends) and returns the prerequisite's state now. CYCLE when the
     * prerequisite waits, through its own prerequisites, for the dependant.
     */
    async registerDependant(args: { prerequisiteTaskId: string; dependantTaskId: string }): Promise<{ status: string; error?: string }> {
      const { cycle, ended } = await registerDependant(deps.pool, args.prerequisiteTaskId, args.dependantTaskId);
      if (cycle) return { status: 'CYCLE', error: chainText(cycle) };
      if (ended) return ended;
      // Registered first, asked second: a prerequisite that ends after this read will find us registered.
      return taskStatus(deps.temporal, args.prerequisiteTaskId);
    },

    /**
     * The prerequisite's state, for a dependant's periodic recheck (no signal is sent to it). CYCLE
     * when the graph leads back to the dependant: registrations before they were serialised could
     * close one, and its tasks would otherwise wait for each other for ever.
     */
    async prerequisiteState(prerequisiteTaskId: string): Promise<{ status: string; error?: string }> {
      const dependantTaskId = Context.current().info.workflowExecution?.workflowId;
      const cycle = dependantTaskId && (await cycleThrough(deps.pool, prerequisiteTaskId, dependantTaskId));
      if (cycle) return { status: 'CYCLE', error: chainText(cycle) };
      return taskStatus(deps.temporal, prerequisiteTaskId);
    },

    /**
     * A task leaves WAITING: frees its (method, data source) slot and its prerequisite registration
     * (a loop keeps that until its final end). Idempotent.
     */
    async leaveWaiting(args: { taskId: string; method: string; dataSourceKey?: string; keepPrerequisite?: boolean }): Promise<void> {
      await deps.pool.query('DELETE FROM task_claims WHERE method = $1 AND data_source_key = $2 AND task_id = $3', [
        args.method,
        args.dataSourceKey ?? '',
        args.taskId,
      ]);
      if (!args.keepPrerequisite) await unregisterDependant(deps.pool, args.taskId);
    },

    /** Tells every task registered as waiting for `taskId` how it ended. Idempotent (a dependant takes the first word). */
    async notifyDependants(args: { taskId: string; status: string; error?: string; final?: boolean; run?: TaskRunEnd }): Promise<number> {
      const dependants = await recordOutcome(deps.pool, args.taskId, { status: args.status, error: args.error }, args.final ?? true, args.run);
      // Fifty at a time: thousands of dependants are told within the activity's time limit.
      for (let i = 0; i < dependants.length; i += 50) {
        await Promise.all(
          dependants.slice(i, i + 50).map((id) =>
            deps.temporal.workflow
              .getHandle(id)
              .signal(prerequisiteDoneSignal, { taskId: args.taskId, status: args.status, error: args.error })
              .catch((err: unknown) => {
                if (!(err instanceof WorkflowNotFoundError)) throw err; // gone: nothing waits there
              }),
          ),
        );
      }
      return dependants.length;
    },

    /**
     * Takes the WAITING slot of (method, data source) for a task, or names the WAITING task that
     * holds it. A slot held by a task that is no longer WAITING is taken over.
     */
    async claimWaitingSlot(args: { taskId: string; method: string; dataSourceKey?: string }): Promise<{ claimed: true } | { claimed: false; holder: string }> {
      // Holding, it returns a holder whenever it does not claim.
      return (await claimSlot(deps, { ...args, hold: true })) as { claimed: true } | { claimed: false; holder: string };
    },

    /** Frees the slot when the task leaves WAITING. Idempotent. */
    async releaseWaitingSlot(args: { taskId: string; method: string; dataSourceKey?: string }): Promise<void> {
      await deps.pool.query('DELETE FROM task_claims WHERE method = $1 AND data_source_key = $2 AND task_id = $3', [
        args.method,
        args.dataSourceKey ?? '',
        args.taskId,
      ]);
    },

    /** Merges a duplicate add into the WAITING task `into`; false when it has left WAITING. */
    async mergeIntoWaitingTask(args: { into: string; registryObjectKeys?: string[] }): Promise<boolean> {
      try {
        await deps.temporal.workflow.getHandle(args.into).executeUpdate(mergeUpdateV2, { args: [{ registryObjectKeys: args.registryObjectKeys }] });
        return true;
      } catch (err) {
        if (err instanceof WorkflowUpdateFailedError || err instanceof WorkflowNotFoundError) return false;
        throw err;
      }
    },

    /**
     * Registers a dependant with its prerequisite (which signals it on ending) and returns the
     * prerequisite's status now; CYCLE when following prerequisites leads back to the dependant.
     */
    async registerWithPrerequisite(args: { prerequisiteTaskId: string; dependantTaskId: string }): Promise<{ status: string; error?: string }> {
      // Walk the chain of running prerequisites: a cycle would wait forever.
      let cursor: string | undefined = args.prerequisiteTaskId;
      const seen = [args.dependantTaskId];
      for (let i = 0; cursor && i < CHAIN_LIMIT; i++) {
        if (seen.includes(cursor)) return { status: 'CYCLE', error: [...seen, cursor].join(' -> ') };
        seen.push(cursor);
        const info: TaskInfo | undefined = await deps.temporal.workflow
          .getHandle(cursor)
          .query(taskInfoQuery)
          .catch(() => undefined);
        cursor = info && info.status === 'WAITING' ? info.prerequisiteTaskId : undefined;
      }
      const before = await taskStatus(deps.temporal, args.prerequisiteTaskId);
      if (!before.running) return before;
      try {
        await deps.temporal.workflow.getHandle(args.prerequisiteTaskId).signal(dependantSignal, args.dependantTaskId);
      } catch (err) {
        if (!(err instanceof WorkflowNotFoundError)) throw err;
      }
      // Ended between the describe and the signal? Then no signal will come: report the end state.
      const after = await taskStatus(deps.temporal, args.prerequisiteTaskId);
      if (!after.running) {
        const info: TaskInfo | undefined = await deps.temporal.workflow
          .getHandle(args.prerequisiteTaskId)
          .query(taskInfoQuery)
          .catch(() => undefined);
        return { status: after.status, error: info?.error };
      }
      return after;
    },

    /** Runs a task module. Its log lines and progress travel in heartbeats, its output in the result. */
    async runTask(args: {
      taskId: string;
      method: string;
      input: Pick<TaskInput, 'registryObjectKeys' | 'dataSourceKey' | 'logMessage'>;
      /** The keys are in task_keys (version 3 on), not in `input`. */
      keysStored?: boolean;
    }): Promise<{ output: unknown; logs: TaskLogLine[]; attempt: number }> {
      const ctx = Context.current();
      const def = deps.tasks.definitions.get(args.method);
      if (!def)
        throw ApplicationFailure.create({ message: unknownMethodMessage(args.method, deps.tasks.files), type: 'UnknownTaskMethod', nonRetryable: true });
      const input = args.keysStored ? { ...args.input, registryObjectKeys: await loadTaskKeys(deps.pool, args.taskId) } : args.input;
      const logs: TaskLogLine[] = [];
      let progress: TaskProgress | undefined;
      const beat = () => ctx.heartbeat({ progress, logTail: logs.slice(-20) });
      const write = (level: TaskLogLine['level']) => (message: string) => {
        const line = String(message);
        logs.push({ at: new Date().toISOString(), level, message: line.length > MAX_LINE ? `${line.slice(0, MAX_LINE)}...` : line });
        if (logs.length > 1000) logs.splice(0, logs.length - 1000);
        ctx.log.info(`[${args.taskId}] ${line}`);
      };
      let subtasks = 0;
      const taskCtx: TaskContext = {
        taskId: args.taskId,
        method: args.method,
        attempt: ctx.info.attempt,
        input,
        pool: deps.pool,
        log: { info: write('info'), warn: write('warn'), error: write('error') },
        progress(done, total, message) {
          progress = { done, total, message };
        },
        // Sub-task ids derive from the parent's run and the call order: a retried attempt adds no
        // duplicates, while each run of a recurring task adds its own.
        async addTask(method: string, options: AddTaskOptions = {}) {
          subtasks += 1;
          const run = (ctx.info.workflowExecution?.runId ?? 'run').slice(0, 8);
          const admission = await client.addTask({ method, ...options }, `${args.taskId}/${run}/${subtasks}-${method}`);
          return admission.deduplicatedInto ?? admission.taskId;
        },
        signal: ctx.cancellationSignal,
        taskManager: client,
        settings: { taskRetentionMs: deps.taskRetentionMs ?? 86_400_000 },
      };
      const timer = setInterval(beat, 2000);
      beat();
      try {
        const output = await def.run(taskCtx);
        const size = output === undefined ? 0 : Buffer.byteLength(JSON.stringify(output));
        if (size > MAX_OUTPUT_BYTES) throw new Error(`the task's output is ${size} bytes; at most ${MAX_OUTPUT_BYTES} are kept`);
        return { output: output ?? null, logs, attempt: ctx.info.attempt };
      } catch (err) {
        // Cancelled: whatever the module threw on seeing its signal, the run ends CANCELLED, not FAILED.
        if (ctx.cancellationSignal.aborted) throw ctx.cancellationSignal.reason ?? err;
        const message = err instanceof Error ? err.message : String(err);
        if (databaseUnavailable(err)) {
          // The registry's database went away under the task: not the task's fault. Wait until it
          // answers again (heartbeating), then let Temporal retry the attempt.
          write('warn')(`the database is unavailable (${message}); the task is retried when it answers`);
          await waitForDatabase(deps.pool, beat, ctx.cancellationSignal);
          throw ApplicationFailure.create({
            message: `the database was unavailable: ${message}`,
            type: 'DatabaseUnavailable',
            details: [{ logs, attempt: ctx.info.attempt }],
          });
        }
        write('error')(message);
        throw ApplicationFailure.create({ message, type: 'TaskFailed', nonRetryable: !def.retryOnError, details: [{ logs, attempt: ctx.info.attempt }] });
      } finally {
        clearInterval(timer);
      }
    },
  });
};
