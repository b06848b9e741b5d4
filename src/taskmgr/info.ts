/** What a task reports about itself (the `task` query), shared by workflow, client, CLI and API. */
import type { TaskStatus } from '../shared.ts';
import type { RunSummary, TaskInput } from './input.ts';
import type { TaskLogLine, TaskProgress } from './types.ts';

/** Dedup merges an add into a WAITING task; the merged execution ends with this status. */
export const MERGED = 'MERGED';

export interface TaskAdmission {
  taskId: string;
  /** Set when the add was merged into an existing WAITING task with the same method and data source. */
  deduplicatedInto?: string;
  /**
   * Set when the task was started but no worker admitted it within the wait (none polls the task
   * queue): it is WAITING and is admitted (merged or run) when a worker comes.
   */
  admissionPending?: true;
}

export interface TaskInfo {
  taskId: string;
  method: string;
  input: TaskInput;
  status: TaskStatus | typeof MERGED;
  /** Why the task is WAITING: its schedule, its prerequisite, or both. */
  waitingFor?: ('schedule' | 'prerequisite')[];
  addedAt: string;
  scheduledFor?: string;
  startedAt?: string;
  completedAt?: string;
  durationMs?: number;
  attempts?: number;
  output?: unknown;
  error?: string;
  logs: TaskLogLine[];
  /** Filled by the client from the running activity's heartbeat. */
  progress?: TaskProgress;
  prerequisiteTaskId?: string;
  dependants: string[];
  deduplicatedInto?: string;
  /** Recurring tasks: which run this is and how the last ones ended. */
  iteration?: number;
  recentRuns?: RunSummary[];
  /** How many record keys the task names (all of them are in PostgreSQL, task_keys). */
  keyCount?: number;
  /** A recurring task between two runs: how the run that just ended ended. */
  lastRunStatus?: TaskStatus;
  /** Adds merged into this WAITING task because it already covered them. */
  mergedAdds?: number;
  /** The task queue the task runs on: a reader tells this manager's tasks from others by it. */
  taskQueue?: string;
  /** Set when no worker could answer and this is the state the server recorded. */
  stale?: string;
}

/** Output of a registryTask workflow run (also what `temporal workflow result` prints). */
export interface TaskResult {
  taskId: string;
  status: TaskInfo['status'];
  output?: unknown;
  deduplicatedInto?: string;
}

/** TaskInfo fields copied as they are into the task's memo (what lists show without a query). */
export const TASK_MEMO_FIELDS = [
  'prerequisiteTaskId',
  'scheduledFor',
  'waitingFor',
  'startedAt',
  'completedAt',
  'durationMs',
  'attempts',
  'iteration',
] as const;
