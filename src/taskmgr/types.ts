/** What a task module is given and what it exports. */
import type { TaskClient } from '../client/task-client.ts';
import type { Pool } from '../db/pool.ts';
import type { TaskInput } from './input.ts';

export type AddTaskOptions = Omit<TaskInput, 'method' | 'loop'>;

export interface TaskLogger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export interface TaskContext {
  taskId: string;
  method: string;
  /** 1 on the first attempt; higher when the task is retried (its worker died, its time ran out). */
  attempt: number;
  input: Pick<TaskInput, 'registryObjectKeys' | 'dataSourceKey' | 'logMessage'>;
  /** The worker's PostgreSQL pool. */
  pool: Pool;
  /** Lines written here become the task's log (shown by `taskmgr show` and the admin page). */
  log: TaskLogger;
  /** Reports progress; shown as a bar while the task runs. */
  progress(done: number, total?: number, message?: string): void;
  /** Adds another task (a sub-task or the next step of a chain); returns its id. */
  addTask(method: string, options?: AddTaskOptions): Promise<string>;
  /** Aborted when the task is cancelled or its time runs out: long loops should check it. */
  signal: AbortSignal;
  /** The task manager itself (list, flush), for maintenance tasks. */
  taskManager: Pick<TaskClient, 'flushTasks' | 'listTasks'>;
  /** The worker's settings a task may need, from its configuration (loaded once per process). */
  settings: { taskRetentionMs: number };
}

export interface TaskDefinition {
  description: string;
  /** Throw to fail the task with the error's message; the return value is the task's output. */
  run(ctx: TaskContext): Promise<unknown>;
  /** Longest a run may take ("30 minutes"); default 1 hour. */
  timeout?: string;
  /** A worker that has not reported for this long is taken for dead and the attempt retried ("30 seconds", the default). */
  heartbeatTimeout?: string;
  /** Attempts when the worker running it dies or the time runs out; default 3. */
  maxAttempts?: number;
  /** Retry errors the task throws too (by default they fail it at once). */
  retryOnError?: boolean;
}

/** Declares a task module: `export default defineTask({ description, run })`. */
export const defineTask = (def: TaskDefinition): TaskDefinition => def;

export interface TaskLogLine {
  at: string;
  level: 'info' | 'warn' | 'error';
  message: string;
}

export interface TaskProgress {
  done: number;
  total?: number;
  message?: string;
}

/**
 * Tasks a task added, as its output names them: the first ones only, and how many there were, so
 * that the output stays within what a task may return (256 KB) however many data sources there
 * are. All of them carry the adding task's id in their log message.
 */
export const LISTED_TASK_IDS = 1000;
export function listedTasks<T>(added: T[]): { listed: T[]; count: number } {
  return { listed: added.slice(0, LISTED_TASK_IDS), count: added.length };
}
