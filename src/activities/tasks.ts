/** Activities of the task manager: method checks, the WAITING slot, prerequisites, running a task module. */
import { ApplicationFailure, Context } from '@temporalio/activity';
import { WorkflowNotFoundError, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import type { Pool } from '../db/pool.ts';
import { TaskClient } from '../client/tasks.ts';
import { TaskStatusKey } from '../shared.ts';
import { unknownMethodMessage, type LoadedTasks } from '../taskmgr/discovery.ts';
import type { TaskInfo } from '../taskmgr/info.ts';
import type { TaskInput } from '../taskmgr/input.ts';
import type { AddTaskOptions, TaskContext, TaskLogLine, TaskProgress } from '../taskmgr/types.ts';
import { dependantSignal, mergeUpdate, taskInfoQuery } from '../workflows/definitions.ts';

export interface TaskActivityDeps {
  pool: Pool;
  temporal: Client;
  taskQueue: string;
  tasks: LoadedTasks;
}

const MAX_OUTPUT_BYTES = 256 * 1024;
const MAX_LINE = 2000;
const CHAIN_LIMIT = 100;

/** Status of a task from its execution: the TaskStatus attribute, or NOT_FOUND. */
async function taskStatus(temporal: Client, taskId: string): Promise<{ status: string; running: boolean; error?: string }> {
  try {
    const d = await temporal.workflow.getHandle(taskId).describe();
    // A task started a moment ago may not have set TaskStatus yet: running means WAITING then.
    const status = d.typedSearchAttributes.get(TaskStatusKey) ?? (d.status.name === 'RUNNING' ? 'WAITING' : d.status.name);
    return { status: d.status.name === 'TERMINATED' || d.status.name === 'TIMED_OUT' ? d.status.name : status, running: d.status.name === 'RUNNING' };
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
  return /Connection terminated|connect ECONNREFUSED|timeout exceeded when trying to connect|the database system is (starting up|shutting down)/.test(e?.message ?? '');
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

export const createTaskActivities = (deps: TaskActivityDeps) => {
  const client = new TaskClient(deps.temporal, deps.taskQueue);
  return {
    /** Checks that a method has an enabled, valid module; returns how to run it. */
    async describeTaskMethod(method: string): Promise<{ timeoutMs: number; maxAttempts: number; heartbeatTimeoutMs?: number }> {
      const def = deps.tasks.definitions.get(method);
      if (!def) throw ApplicationFailure.create({ message: unknownMethodMessage(method, deps.tasks.files), type: 'UnknownTaskMethod', nonRetryable: true });
      return { timeoutMs: def.timeoutMs, maxAttempts: def.maxAttempts ?? 3, heartbeatTimeoutMs: def.heartbeatTimeoutMs };
    },

    /**
     * Takes the WAITING slot of (method, data source) for a task, or names the WAITING task that
     * holds it. A slot held by a task that is no longer WAITING is taken over.
     */
    async claimWaitingSlot(args: { taskId: string; method: string; dataSourceKey?: string }): Promise<{ claimed: true } | { claimed: false; holder: string }> {
      const ds = args.dataSourceKey ?? '';
      for (;;) {
        const inserted = await deps.pool.query(
          `INSERT INTO task_claims (method, data_source_key, task_id) VALUES ($1, $2, $3)
           ON CONFLICT (method, data_source_key) DO NOTHING`,
          [args.method, ds, args.taskId],
        );
        if (inserted.rowCount) return { claimed: true };
        const { rows } = await deps.pool.query<{ task_id: string }>('SELECT task_id FROM task_claims WHERE method = $1 AND data_source_key = $2', [args.method, ds]);
        const holder = rows[0]?.task_id;
        if (holder === undefined) continue; // released meanwhile
        if (holder === args.taskId) return { claimed: true }; // a retry of our own claim
        const state = await taskStatus(deps.temporal, holder);
        if (state.running && state.status === 'WAITING') return { claimed: false, holder };
        // Stale (the holder ended without releasing, e.g. terminated): take it over if still stale.
        const swapped = await deps.pool.query(
          'UPDATE task_claims SET task_id = $4, claimed_at = now() WHERE method = $1 AND data_source_key = $2 AND task_id = $3',
          [args.method, ds, holder, args.taskId],
        );
        if (swapped.rowCount) return { claimed: true };
      }
    },

    /** Frees the slot when the task leaves WAITING. Idempotent. */
    async releaseWaitingSlot(args: { taskId: string; method: string; dataSourceKey?: string }): Promise<void> {
      await deps.pool.query('DELETE FROM task_claims WHERE method = $1 AND data_source_key = $2 AND task_id = $3', [args.method, args.dataSourceKey ?? '', args.taskId]);
    },

    /** Merges a duplicate add into the WAITING task `into`; false when it has left WAITING. */
    async mergeIntoWaitingTask(args: { into: string; registryObjectKeys?: string[] }): Promise<boolean> {
      try {
        await deps.temporal.workflow.getHandle(args.into).executeUpdate(mergeUpdate, { args: [{ registryObjectKeys: args.registryObjectKeys }] });
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
        const info: TaskInfo | undefined = await deps.temporal.workflow.getHandle(cursor).query(taskInfoQuery).catch(() => undefined);
        cursor = info && (info.status === 'WAITING') ? info.prerequisiteTaskId : undefined;
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
        const info: TaskInfo | undefined = await deps.temporal.workflow.getHandle(args.prerequisiteTaskId).query(taskInfoQuery).catch(() => undefined);
        return { status: after.status, error: info?.error };
      }
      return after;
    },

    /** Runs a task module. Its log lines and progress travel in heartbeats, its output in the result. */
    async runTask(args: { taskId: string; method: string; input: Pick<TaskInput, 'registryObjectKeys' | 'dataSourceKey' | 'logMessage'> }): Promise<{ output: unknown; logs: TaskLogLine[]; attempt: number }> {
      const ctx = Context.current();
      const def = deps.tasks.definitions.get(args.method);
      if (!def) throw ApplicationFailure.create({ message: unknownMethodMessage(args.method, deps.tasks.files), type: 'UnknownTaskMethod', nonRetryable: true });
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
        input: args.input,
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
      };
      const timer = setInterval(beat, 2000);
      beat();
      try {
        const output = await def.run(taskCtx);
        const size = output === undefined ? 0 : Buffer.byteLength(JSON.stringify(output));
        if (size > MAX_OUTPUT_BYTES) throw new Error(`the task's output is ${size} bytes; at most ${MAX_OUTPUT_BYTES} are kept`);
        return { output: output ?? null, logs, attempt: ctx.info.attempt };
      } catch (err) {
        if (ctx.cancellationSignal.aborted) throw err;
        const message = err instanceof Error ? err.message : String(err);
        if (databaseUnavailable(err)) {
          // The registry's database went away under the task: not the task's fault. Wait until it
          // answers again (heartbeating), then let Temporal retry the attempt.
          write('warn')(`the database is unavailable (${message}); the task is retried when it answers`);
          await waitForDatabase(deps.pool, beat, ctx.cancellationSignal);
          throw ApplicationFailure.create({ message: `the database was unavailable: ${message}`, type: 'DatabaseUnavailable', details: [{ logs, attempt: ctx.info.attempt }] });
        }
        write('error')(message);
        throw ApplicationFailure.create({ message, type: 'TaskFailed', nonRetryable: !def.retryOnError, details: [{ logs, attempt: ctx.info.attempt }] });
      } finally {
        clearInterval(timer);
      }
    },
  };
};
