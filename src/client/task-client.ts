/**
 * The task manager's client API: what registry code, the CLI and the admin API call.
 * Every function works on the Temporal workflows themselves; nothing is kept elsewhere.
 */
import { UserError } from '../user-error.ts';
import crypto from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  ApplicationFailure,
  Client,
  WithStartWorkflowOperation,
  WorkflowExecutionAlreadyStartedError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  WorkflowUpdateRPCTimeoutOrCancelledError,
  type WorkflowExecutionDescription,
  type WorkflowExecutionInfo,
} from '@temporalio/client';

/** The type of the refusal a failed update carries, if any. */
const refusalType = (err: WorkflowUpdateFailedError): string | undefined =>
  err.cause instanceof ApplicationFailure ? (err.cause.type ?? undefined) : undefined;

/** gRPC FAILED_PRECONDITION: what the server answers a query when no worker polls the queue. */
const GRPC_FAILED_PRECONDITION = 9;
const GRPC_DEADLINE_EXCEEDED = 4;
const GRPC_CANCELLED = 1;
/** How long a task's query may take: a worker answers in milliseconds, a replay of a long history in a few seconds. */
const QUERY_DEADLINE_MS = 10_000;
import { executionInfoFromRaw } from '@temporalio/client/lib/helpers.js';
import { defaultPayloadConverter } from '@temporalio/common';
import type { Config } from '../config.ts';
import type { Pool } from '../db/pool.ts';
import {
  checkRecordKey,
  DataSourceKeyKey,
  DEFAULT_TASK_QUEUE,
  keysForSearchAttribute,
  MERGE_WINDOW_MS,
  RegistryObjectKeysKey,
  TASK_STATUSES,
  TaskMethodKey,
  TaskStatusKey,
  utf8Length,
  type TaskStatus,
} from '../shared.ts';
import {
  dependantsOf,
  forgetTasks,
  heldAsPrerequisites,
  unregisterDependant,
  keysCover,
  waitingSlotHolder,
  loadTaskKeys,
  storeTaskKeys,
  tasksNamingKey,
} from '../taskmgr/task-store.ts';
import { assertAvailable, listTaskFiles, type TaskFiles } from '../taskmgr/discovery.ts';
import { MERGED, TASK_MEMO_FIELDS, type TaskAdmission, type TaskInfo } from '../taskmgr/info.ts';
import { TASK_LIMITS, TaskInputError, validateTaskInput, validateTaskKeys, type TaskInput } from '../taskmgr/input.ts';
import type { AddTaskOptions, TaskProgress } from '../taskmgr/types.ts';
import { MERGE_REFUSALS, mergeCoveredUpdate, rescheduleUpdate, taskAdmissionUpdate, taskInfoQuery, type CoveredAdd } from '../workflows/definitions.ts';
import type { registryTask } from '../workflows/registryTask.ts';
import { connectClient, isUpdateLimitReached } from './connection.ts';
import { boundedWorkflowId } from './workflow-ids.ts';
import { answeredWithin, DEFAULT_ANSWER_LIMIT_MS, DEFAULT_WORKER_WAIT_MS, QueuedForWorkerError, queuedMessage } from './worker-wait.ts';
import { startArgument, startedWithInput } from './own-start.ts';

export { TaskInputError };
export { UnknownTaskMethodError } from '../taskmgr/discovery.ts';

export class TaskNotFoundError extends UserError {
  override name = 'TaskNotFoundError';
  override readonly httpStatus = 404;
}
/** The task exists but cannot do what was asked (reschedule a running task, retry a completed one). */
export class TaskStateError extends UserError {
  override name = 'TaskStateError';
  override readonly httpStatus = 409;
}

export interface TaskSummary {
  taskId: string;
  method?: string;
  status?: string;
  dataSourceKey?: string;
  registryObjectKeys?: string[];
  addedAt: Date;
  closedAt?: Date;
  temporalStatus: string;
  /** From the task's memo (tasks added before version 2 of the workflow have none). */
  logMessage?: string;
  prerequisiteTaskId?: string;
  scheduledFor?: string;
  waitingFor?: string[];
  startedAt?: string;
  completedAt?: string;
  durationMs?: number;
  attempts?: number;
  error?: string;
  keyCount?: number;
  iteration?: number;
}

export interface ListTasksFilter {
  status?: TaskStatus | TaskStatus[];
  method?: string;
  dataSourceKey?: string;
  /** Tasks whose RegistryObjectKeys hold this key. */
  recordKey?: string;
  /** A task id, method or data source beginning with this, or a record key equal to it. */
  text?: string;
  /** Added at or after / before. */
  from?: Date;
  to?: Date;
  pageSize?: number;
  /** From the previous page's `nextPageToken`. */
  pageToken?: string;
}

const WORKFLOW_TYPE = 'registryTask';
/**
 * The one HOURLY_REGISTRY_MAINTENANCE loop of a registry: of its task queue, as the coalescers
 * are. Two registries in one namespace (two task queues) each keep their own: with one shared
 * id, the second would join a loop whose workers may be gone and wait for its answer forever.
 * The default queue keeps the name it always had.
 */
export function maintenanceTaskId(taskQueue: string): string {
  return boundedWorkflowId(taskQueue === DEFAULT_TASK_QUEUE ? 'task:HOURLY_REGISTRY_MAINTENANCE' : `task:HOURLY_REGISTRY_MAINTENANCE:${taskQueue}`);
}
const SAFE_VALUE = /^[\w\-.:/@ ]{1,255}$/;
/** listTasks({ recordKey }) looks at this many of the newest tasks naming the key. */
const MAX_TASKS_PER_KEY = 500;
/** A loop's runs follow each other in milliseconds at the fastest; a cancel lands within a few tries. */
const CANCEL_ATTEMPTS = 10;
/** How long cancelTask watches a cancelled run for its close (a WAITING task closes in milliseconds, a running one within seconds). */
const CANCEL_CONFIRM_MS = 10_000;

/** The status a run closed with, or RUNNING if it is still open after `withinMs`. */
async function closedAs(run: { describe(): Promise<{ status: { name: string } }> }, withinMs: number): Promise<string> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    const status = (await run.describe()).status.name;
    if (status !== 'RUNNING' || Date.now() >= deadline) return status;
    await sleep(50);
  }
}

/** Task ids say what the task is: task:GENERATE_CACHE:csiro:1f2e3d4c (shortened as workflow-ids.ts says when the data source key is long). */
export function newTaskId(method: string, dataSourceKey?: string): string {
  return boundedWorkflowId(`task:${method}:${dataSourceKey ?? 'all'}:${crypto.randomBytes(4).toString('hex')}`);
}

export interface TaskClientOptions {
  /**
   * The task manager's PostgreSQL (the registry's): large key sets travel through it, and
   * listTasks({ recordKey }) finds a task by any of its keys through it. Without it, a task's keys
   * must fit its workflow input, and a key search sees only the keys in the search attribute.
   */
  pool?: Pool;
  /** How long an add waits for a worker to admit the task (default 15 s); then it answers admissionPending. */
  workerWaitMs?: number;
  /**
   * How long an add or a reschedule waits at most while workers poll but do not answer (default 2
   * minutes); then the add answers admissionPending, the reschedule QueuedForWorkerError.
   */
  answerLimitMs?: number;
  /**
   * The signal that ends a wait for admission early, read at each add: inside an activity, its
   * cancellation (a worker shutting down must not wait minutes on a task its own workflows were to admit).
   */
  stopWaiting?: () => AbortSignal | undefined;
}

/** gRPC NOT_FOUND: the execution is already gone. */
const GRPC_NOT_FOUND = 5;

export class TaskClient {
  readonly pool?: Pool;
  private readonly workerWaitMs: number;
  private readonly answerLimitMs: number;
  private readonly stopWaiting?: () => AbortSignal | undefined;
  constructor(
    readonly client: Client,
    readonly taskQueue: string,
    options: TaskClientOptions = {},
  ) {
    this.pool = options.pool;
    this.workerWaitMs = options.workerWaitMs ?? DEFAULT_WORKER_WAIT_MS;
    this.answerLimitMs = options.answerLimitMs ?? DEFAULT_ANSWER_LIMIT_MS;
    this.stopWaiting = options.stopWaiting;
  }

  static async connect(config: Config, addressOverride?: string, options: TaskClientOptions = {}): Promise<TaskClient> {
    return new TaskClient(await connectClient(config, addressOverride), config.temporal.taskQueue, { workerWaitMs: config.workerWaitMs, ...options });
  }

  async close(): Promise<void> {
    await this.client.connection.close();
  }

  /** The methods that can be added (task files not starting with `_`) and the disabled ones. */
  availableTasks(): TaskFiles {
    return listTaskFiles();
  }

  /**
   * Adds a task (registry code's addNewTask): returns its id, or, when a task with the same method
   * and data source is WAITING, that task's id (the new keys are merged into it).
   */
  async addNewTask(method: string, options: AddTaskOptions = {}): Promise<string> {
    const admission = await this.addTask({ method, ...options });
    return admission.deduplicatedInto ?? admission.taskId;
  }

  /**
   * Adds a task and says whether it was merged. A given `taskId` makes the add idempotent
   * (sub-tasks); with `restartIfClosed` a closed task of that id is started again (maintenance).
   */
  async addTask(input: TaskInput, taskId?: string, opts: { restartIfClosed?: boolean } = {}): Promise<TaskAdmission> {
    assertAvailable(input?.method);
    const id = taskId ?? newTaskId(input.method, input?.dataSourceKey);
    const { startInput, storedKeys } = this.splitKeys(input);
    const valid = validateTaskInput(startInput, Date.now(), id);
    if (input.prerequisiteTaskId && input.prerequisiteTaskId !== taskId) await this.assertTaskExists(input.prerequisiteTaskId);
    // Covered by a WAITING task: merged without starting an execution that would only end MERGED.
    const covering = taskId === undefined && valid.recurMs === undefined ? await this.mergeIntoCoveringTask(input, valid.scheduledAt) : undefined;
    if (covering) return { taskId: covering, deduplicatedInto: covering };
    if (storedKeys) await storeTaskKeys(this.pool!, id, storedKeys);
    const keys = input.registryObjectKeys ?? [];
    const startWorkflowOperation = new WithStartWorkflowOperation<typeof registryTask>(WORKFLOW_TYPE, {
      workflowId: id,
      taskQueue: this.taskQueue,
      args: [startInput],
      // A given id is a retried add: join the existing task rather than start a second one.
      workflowIdConflictPolicy: taskId ? 'USE_EXISTING' : 'FAIL',
      workflowIdReusePolicy: taskId && !opts.restartIfClosed ? 'REJECT_DUPLICATE' : 'ALLOW_DUPLICATE',
      typedSearchAttributes: [
        { key: TaskMethodKey, value: input.method },
        { key: TaskStatusKey, value: 'WAITING' },
        ...(input.dataSourceKey ? [{ key: DataSourceKeyKey, value: input.dataSourceKey }] : []),
        ...(keys.length ? [{ key: RegistryObjectKeysKey, value: keysForSearchAttribute(keys) }] : []),
      ],
    });
    try {
      return await this.admitted(id, () => this.client.workflow.executeUpdateWithStart(taskAdmissionUpdate, { startWorkflowOperation }));
    } catch (err) {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
      if (taskId) return { taskId };
      // A new id already started: our own start retried, or another task's random id (own-start.ts).
      if (!(await startedWithInput(this.client, id, startInput))) return this.addTask(input, undefined, opts);
      const handle = this.client.workflow.getHandle(id);
      try {
        return await this.admitted(id, () => handle.executeUpdate(taskAdmissionUpdate));
      } catch (updateErr) {
        // A quick task may have ended already: it was admitted, and it is this one.
        if ((await handle.describe()).status.name !== 'RUNNING') return { taskId: id };
        throw updateErr;
      }
    }
  }

  /** A task's admission (a worker's job); with no worker polling after workerWaitMs, the task is WAITING for one (worker-wait.ts). */
  private async admitted(taskId: string, admit: () => Promise<TaskAdmission>): Promise<TaskAdmission> {
    const r = await answeredWithin(this.client, { ...this.workerWaits(taskId), stop: this.stopWaiting?.() }, admit);
    return 'answer' in r ? r.answer : { taskId, admissionPending: true };
  }

  /** How a call on `taskId` waits for its worker (answeredWithin). */
  private workerWaits(taskId: string) {
    return { workflowId: taskId, taskQueue: this.taskQueue, waitMs: this.workerWaitMs, limitMs: this.answerLimitMs };
  }

  /**
   * Keys beyond what a workflow input should carry go to PostgreSQL (task_keys) under the task's
   * id, and the input says how many to expect there.
   */
  private splitKeys(input: TaskInput): { startInput: TaskInput; storedKeys?: string[] } {
    const keys = input?.registryObjectKeys;
    if (!Array.isArray(keys) || utf8Length(JSON.stringify(keys)) <= TASK_LIMITS.maxInlineKeyBytes) return { startInput: input };
    const unique = validateTaskKeys(keys);
    if (!this.pool) {
      throw new TaskInputError(
        'registryObjectKeys',
        `registryObjectKeys take more than ${TASK_LIMITS.maxInlineKeyBytes} bytes; a TaskClient with the task manager's database (options.pool) stores up to ${TASK_LIMITS.maxKeys} keys, or split them over several tasks`,
      );
    }
    const { registryObjectKeys: _keys, ...rest } = input;
    return { startInput: { ...rest, storedKeyCount: unique.length }, storedKeys: unique };
  }

  /**
   * The merge of an add into the WAITING task holding its (method, data source) slot, done by the
   * client when it has the database: the same rule as the workflow's (keys here, prerequisite and
   * start checked by the holder itself, atomically). Undefined when there is no such task or it
   * does not cover the add; the add then starts its own workflow, which tries again.
   */
  private async mergeIntoCoveringTask(input: TaskInput, scheduledAt: number | undefined): Promise<string | undefined> {
    if (!this.pool) return undefined;
    const holder = await waitingSlotHolder(this.pool, input.method, input.dataSourceKey);
    if (!holder || !(await keysCover(this.pool, holder, input.registryObjectKeys))) return undefined;
    const start = Math.max(scheduledAt ?? 0, Date.now());
    const add: CoveredAdd = {
      fromTaskId: '(client)',
      prerequisiteTaskId: input.prerequisiteTaskId,
      notBefore: start - MERGE_WINDOW_MS,
      notAfter: start + MERGE_WINDOW_MS,
    };
    // Between two runs of the holder's wait (it continues as new), an update meets the closed run or
    // the next one still admitting itself: asked again while the holder keeps the slot.
    for (let attempt = 1; ; attempt++) {
      try {
        // Bounded: a holder whose worker does not answer leaves the add to start a task of its own.
        const deadline = Date.now() + this.workerWaitMs;
        await this.client.connection.withDeadline(deadline, () => this.client.workflow.getHandle(holder).executeUpdate(mergeCoveredUpdate, { args: [add] }));
        return holder;
      } catch (err) {
        if (err instanceof WorkflowUpdateRPCTimeoutOrCancelledError) return undefined;
        const betweenRuns =
          err instanceof WorkflowNotFoundError || (err instanceof WorkflowUpdateFailedError && refusalType(err) === MERGE_REFUSALS.notWaiting);
        if (betweenRuns && attempt < 4 && (await waitingSlotHolder(this.pool, input.method, input.dataSourceKey)) === holder) {
          await sleep(50 * attempt);
          continue;
        }
        if (err instanceof WorkflowUpdateFailedError || err instanceof WorkflowNotFoundError || isUpdateLimitReached(err)) return undefined;
        throw err;
      }
    }
  }

  private async assertTaskExists(taskId: string): Promise<void> {
    // Refused here rather than added to fail at once (the workflow still checks, for other callers).
    const exists = await this.client.workflow
      .getHandle(taskId)
      .describe()
      .then(
        (d) => this.isOurs(d),
        (err) => (err instanceof WorkflowNotFoundError ? false : Promise.reject(err)),
      );
    if (!exists) throw new TaskInputError('prerequisiteTaskId', `prerequisite task ${JSON.stringify(taskId)} does not exist`);
  }

  /**
   * Everything about a task: inputs, status, times, output, error, log lines, live progress. One
   * query, answered by the task itself (with its queue, so only this manager's tasks are shown);
   * the execution is described too only for a STARTED task's progress (its heartbeats are the
   * server's), when the query fails, or when a worker of an older version answers.
   */
  async getTask(taskId: string): Promise<TaskInfo> {
    const handle = this.client.workflow.getHandle(taskId);
    try {
      // Bounded: a workflow on a queue no worker polls would hold the query for the server's 30 s.
      const query = () => handle.query(taskInfoQuery);
      const deadline = Date.now() + QUERY_DEADLINE_MS;
      const queried = await this.client.connection.withDeadline(deadline, query).then(
        (info) => ({ info }),
        (err: unknown) => ({ err }),
      );
      // A little early counts too: the gRPC library's timer and ours need not agree to the millisecond.
      if ('err' in queried) return await this.taskWithoutQuery(taskId, queried.err, Date.now() >= deadline - 100);
      if (queried.info.taskQueue === undefined) return await this.describedTask(taskId, queried.info);
      if (queried.info.taskQueue !== this.taskQueue) throw new TaskNotFoundError(`task ${JSON.stringify(taskId)} does not exist`);
      const info = await this.withDependants(queried.info);
      return info.status === 'STARTED' ? this.withProgress(info, await handle.describe()) : info;
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) throw new TaskNotFoundError(`task ${JSON.stringify(taskId)} does not exist`);
      throw err;
    }
  }

  /**
   * A query that failed: another workflow with this id (it has no task query), or no worker to
   * answer (then what the server recorded is shown). Only this manager's tasks are shown.
   */
  private async taskWithoutQuery(taskId: string, queryError: unknown, deadlinePassed: boolean): Promise<TaskInfo> {
    const description = await this.client.workflow.getHandle(taskId).describe();
    if (!this.isOurs(description)) throw new TaskNotFoundError(`task ${JSON.stringify(taskId)} does not exist`);
    const code = (queryError as { cause?: { code?: number }; code?: number }).cause?.code ?? (queryError as { code?: number }).code;
    // Cut off by our deadline: DEADLINE_EXCEEDED, or CANCELLED when the client's retry stood between attempts.
    const cutOff = code === GRPC_DEADLINE_EXCEEDED || (code === GRPC_CANCELLED && deadlinePassed);
    if (code !== GRPC_FAILED_PRECONDITION && !cutOff) throw queryError;
    return this.recordedTaskInfo(taskId, description);
  }

  /** A task answered by a worker of an older version (no queue in its answer): described to tell whose it is. */
  private async describedTask(taskId: string, queried: TaskInfo): Promise<TaskInfo> {
    const description = await this.client.workflow.getHandle(taskId).describe();
    if (!this.isOurs(description)) throw new TaskNotFoundError(`task ${JSON.stringify(taskId)} does not exist`);
    const info = await this.withDependants(queried);
    const between = info.input.recurEvery !== undefined && !['WAITING', 'STARTED', 'CANCELLED'].includes(info.status);
    // The run has ended and the loop is about to continue as new: the task waits for its next run.
    if (between && description.status.name === 'RUNNING')
      return { ...info, status: 'WAITING', waitingFor: ['schedule'], lastRunStatus: info.status } as TaskInfo;
    return info.status === 'STARTED' ? this.withProgress(info, description) : info;
  }

  /** A STARTED task with the progress and log lines its run last reported by heartbeat. */
  private withProgress(info: TaskInfo, description: WorkflowExecutionDescription): TaskInfo {
    const progress = heartbeatProgress(description.raw.pendingActivities);
    return progress ? { ...info, progress: progress.progress, logs: [...info.logs, ...(progress.logTail ?? [])] } : info;
  }

  /** A registryTask execution on this manager's task queue. */
  private isOurs(d: WorkflowExecutionDescription): boolean {
    return d.type === WORKFLOW_TYPE && d.taskQueue === this.taskQueue;
  }

  /** Adds the WAITING tasks registered (in PostgreSQL) as waiting for this one. */
  private async withDependants(info: TaskInfo): Promise<TaskInfo> {
    if (!this.pool) return info;
    const registered = await dependantsOf(this.pool, info.taskId);
    return registered.length ? { ...info, dependants: [...new Set([...info.dependants, ...registered])] } : info;
  }

  /** A task as the server recorded it (search attributes, memo, input), for when no worker answers queries. */
  private async recordedTaskInfo(taskId: string, d: WorkflowExecutionDescription): Promise<TaskInfo> {
    const input = ((await startArgument(this.client, taskId, d.runId)) ?? { method: d.typedSearchAttributes.get(TaskMethodKey) ?? '' }) as TaskInput;
    const memo = (d.memo ?? {}) as Record<string, unknown>;
    return {
      taskId,
      method: input.method,
      input,
      status: (d.typedSearchAttributes.get(TaskStatusKey) ?? 'WAITING') as TaskInfo['status'],
      addedAt: input.loop?.firstAddedAt ?? d.startTime.toISOString(),
      ...Object.fromEntries(TASK_MEMO_FIELDS.filter((k) => memo[k] !== undefined && memo[k] !== null).map((k) => [k, memo[k]])),
      error: (memo.error as string | null) ?? undefined,
      prerequisiteTaskId: input.prerequisiteTaskId,
      iteration: input.loop?.iteration,
      recentRuns: input.loop?.recentRuns,
      logs: [],
      dependants: [],
      stale: 'no worker answered; this is the state the server recorded (no output or log lines)',
    };
  }

  private queueClause(): string {
    if (!SAFE_VALUE.test(this.taskQueue))
      throw new TaskInputError('taskQueue', `task queue ${JSON.stringify(this.taskQueue)} may only contain letters, digits, spaces and - . : / @ _`);
    return `TaskQueue = '${this.taskQueue}'`;
  }

  /** The visibility query for a filter; values are checked, never pasted in raw. */
  private taskQuery(filter: Omit<ListTasksFilter, 'pageSize' | 'pageToken'>, idsNamingKey?: string[]): string {
    // One task manager is one task queue: registries (or test files) sharing a namespace see only their own tasks.
    const clauses = [`WorkflowType = '${WORKFLOW_TYPE}'`, this.queueClause()];
    const statuses = filter.status === undefined ? [] : Array.isArray(filter.status) ? filter.status : [filter.status];
    for (const s of statuses)
      if (!(TASK_STATUSES as readonly string[]).includes(s))
        throw new TaskInputError('status', `status ${JSON.stringify(s)} is not one of ${TASK_STATUSES.join(', ')}`);
    // A recurring task's earlier runs ended in continue-as-new; its current run stands for it.
    clauses.push(`ExecutionStatus != 'ContinuedAsNew'`);
    clauses.push(statuses.length ? `TaskStatus IN (${statuses.map((s) => `'${s}'`).join(', ')})` : `TaskStatus != '${MERGED}'`);
    const safe = (name: string, value: string) => {
      if (!SAFE_VALUE.test(value)) throw new TaskInputError(name, `${name} ${JSON.stringify(value)} may only contain letters, digits, spaces and - . : / @ _`);
      return value;
    };
    if (filter.method !== undefined) clauses.push(`TaskMethod = '${safe('method', filter.method)}'`);
    if (filter.dataSourceKey !== undefined) clauses.push(`DataSourceKey = '${safe('dataSourceKey', filter.dataSourceKey)}'`);
    if (filter.recordKey !== undefined) clauses.push(this.recordKeyClause(filter.recordKey, idsNamingKey));
    if (filter.text !== undefined && filter.text.trim() !== '') {
      const t = safe('text', filter.text.trim());
      clauses.push(
        `(WorkflowId STARTS_WITH '${t}' OR TaskMethod STARTS_WITH '${t.toUpperCase()}' OR DataSourceKey STARTS_WITH '${t}' OR RegistryObjectKeys = '${t}')`,
      );
    }
    if (filter.from) clauses.push(`StartTime >= '${filter.from.toISOString()}'`);
    if (filter.to) clauses.push(`StartTime < '${filter.to.toISOString()}'`);
    return clauses.join(' AND ');
  }

  /** How many tasks match a filter (the admin page's "background work in progress"). */
  async countTasks(filter: Omit<ListTasksFilter, 'pageSize' | 'pageToken'> = {}): Promise<number> {
    const query = this.taskQuery(filter, await this.idsNamingKey(filter.recordKey));
    const r = await this.client.workflowService.countWorkflowExecutions({ namespace: this.client.options.namespace, query });
    return Number(r.count ?? 0);
  }

  /** Lists tasks, newest first, filtered by status, method, data source, record key, text and time added; paged. */
  async listTasks(filter: ListTasksFilter = {}): Promise<{ tasks: TaskSummary[]; nextPageToken?: string }> {
    const query = this.taskQuery(filter, await this.idsNamingKey(filter.recordKey));
    const pageSize = filter.pageSize ?? 50;
    if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > 1000)
      throw new TaskInputError('pageSize', `pageSize ${pageSize} must be a whole number from 1 to 1000`);
    const response = await this.client.workflowService.listWorkflowExecutions({
      namespace: this.client.options.namespace,
      query,
      pageSize,
      nextPageToken: filter.pageToken ? Buffer.from(filter.pageToken, 'base64url') : undefined,
    });
    const tasks = await Promise.all(
      (response.executions ?? []).map(async (raw) =>
        toSummary(await executionInfoFromRaw(raw, this.client.options.loadedDataConverter, raw, this.client.options.namespace)),
      ),
    );
    const token = response.nextPageToken?.length ? Buffer.from(response.nextPageToken).toString('base64url') : undefined;
    return { tasks, nextPageToken: token };
  }

  /**
   * Tasks naming a key: every task's keys are in PostgreSQL (any key, up to 512 characters of any
   * text); the search attribute holds the leading keys of each task, for a client without it.
   */
  private recordKeyClause(recordKey: string, idsNamingKey: string[] | undefined): string {
    const bad = checkRecordKey(recordKey);
    if (bad) throw new TaskInputError('recordKey', bad);
    const ids = (idsNamingKey ?? []).filter((id) => SAFE_VALUE.test(id)).map((id) => `'${id}'`);
    const byAttribute = SAFE_VALUE.test(recordKey) ? `RegistryObjectKeys = '${recordKey}'` : undefined;
    if (idsNamingKey === undefined && !byAttribute)
      throw new TaskInputError(
        'recordKey',
        `recordKey ${JSON.stringify(recordKey.slice(0, 80))} can only be searched with the task manager's database (options.pool)`,
      );
    const byDatabase = ids.length ? `WorkflowId IN (${ids.join(', ')})` : undefined;
    const either = [byAttribute, byDatabase].filter(Boolean);
    return either.length ? `(${either.join(' OR ')})` : `WorkflowId = ''`;
  }

  /** Task ids that name a record key, from PostgreSQL (when this client has it). */
  private async idsNamingKey(recordKey: string | undefined): Promise<string[] | undefined> {
    if (recordKey === undefined || !this.pool) return undefined;
    return tasksNamingKey(this.pool, recordKey, MAX_TASKS_PER_KEY);
  }

  /** Cancels a WAITING or STARTED task (a recurring one stops for good, also between two runs). */
  async cancelTask(taskId: string): Promise<void> {
    const info = await this.getTask(taskId);
    if (info.status !== 'WAITING' && info.status !== 'STARTED')
      throw new TaskStateError(`task ${taskId} is ${info.status}; only WAITING or STARTED tasks can be cancelled`);
    await this.cancelRunningRun(taskId);
  }

  /**
   * Sends the cancel to one run and checks it reached it. The server takes a cancel for a run that
   * has just continued as new as done (a closed run), and the loop's next run never hears of it; so
   * when the run asked has continued as new, the next one is asked. A run that was running when
   * asked keeps the request, and every path to a next run honours it first.
   */
  private async cancelRunningRun(taskId: string): Promise<void> {
    for (let attempt = 1; attempt <= CANCEL_ATTEMPTS; attempt++) {
      const current = await this.client.workflow.getHandle(taskId).describe();
      if (current.status.name !== 'RUNNING') return; // it ended meanwhile: nothing left to cancel
      const run = this.client.workflow.getHandle(taskId, current.runId);
      await run.cancel();
      // A run that holds the request may still continue as new: its last workflow task was under
      // way when the request came, and the server let it close (seen in recurring-cancel.test.ts).
      // So the run is watched until it closes; a run still open after that long keeps the request.
      if ((await closedAs(run, CANCEL_CONFIRM_MS)) !== 'CONTINUED_AS_NEW') return;
    }
    throw new TaskStateError(`task ${taskId} moved on to a new run each of the ${CANCEL_ATTEMPTS} times it was cancelled; cancel it again`);
  }

  /**
   * Moves a WAITING task's start: a delay ("15 minutes") or an ISO time. The task's worker answers;
   * with none answering, QueuedForWorkerError says so (the request may still apply when a worker
   * takes it up: the task's scheduled time tells).
   */
  async rescheduleTask(taskId: string, scheduledFor: string): Promise<TaskInfo> {
    try {
      const r = await answeredWithin(this.client, this.workerWaits(taskId), () =>
        this.client.workflow.getHandle(taskId).executeUpdate(rescheduleUpdate, { args: [scheduledFor] }),
      );
      if ('answer' in r) return r.answer;
      // Unlike an add, nothing durable waits: a request no worker has taken is held by the server only.
      const then = "It may still apply when a worker takes it up: check the task's scheduled time.";
      throw new QueuedForWorkerError(queuedMessage(r, `the reschedule of task ${taskId} was sent`, this.taskQueue, this.answerLimitMs, then));
    } catch (err) {
      // A closed task takes no updates: say what state it is in (getTask throws if it does not exist).
      if (err instanceof WorkflowNotFoundError)
        throw new TaskStateError(`task ${taskId} is ${(await this.getTask(taskId)).status}; only WAITING tasks can be rescheduled`);
      if (err instanceof WorkflowUpdateFailedError) throw new TaskStateError((err.cause as Error | undefined)?.message ?? err.message);
      throw err;
    }
  }

  /** Adds a FAILED or CANCELLED task again with the same inputs; returns the new task's id. */
  async retryTask(taskId: string): Promise<string> {
    const info = await this.getTask(taskId);
    if (info.status !== 'FAILED' && info.status !== 'CANCELLED')
      throw new TaskStateError(`task ${taskId} is ${info.status}; only FAILED or CANCELLED tasks can be retried`);
    const { loop: _loop, resume: _resume, scheduledFor: _when, storedKeyCount, ...input } = info.input;
    if (storedKeyCount) {
      if (!this.pool)
        throw new TaskStateError(
          `task ${taskId} names ${storedKeyCount} keys kept in PostgreSQL; retry it with a TaskClient that has the database (options.pool)`,
        );
      input.registryObjectKeys = await loadTaskKeys(this.pool, taskId);
    }
    return this.addNewTask(input.method, input);
  }

  /**
   * Deletes one execution: true once the server has it, false when it is already gone. A refusal
   * of another kind (the server busy, a deadline) is tried twice more, then thrown: a flush that
   * skipped it quietly would report tasks as flushed that stay.
   */
  private async deleteExecution(wf: { workflowId: string; runId: string }): Promise<boolean> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.client.workflowService.deleteWorkflowExecution({
          namespace: this.client.options.namespace,
          workflowExecution: { workflowId: wf.workflowId, runId: wf.runId },
        });
        return true;
      } catch (err) {
        if ((err as { code?: number }).code === GRPC_NOT_FOUND) return false;
        if (attempt >= 3) throw err;
        await new Promise((r) => setTimeout(r, 500 * attempt));
      }
    }
  }

  /** Deletes closed tasks: COMPLETED (and CANCELLED) ones closed before `olderThan`, or all FAILED ones. */
  async flushTasks(what: { completedBefore: Date } | { failed: true }, opts: { onDeleted?: (taskId: string) => void } = {}): Promise<number> {
    // Which tasks others wait for is in PostgreSQL: without it, a prerequisite could be deleted under a waiting task.
    if (!this.pool)
      throw new TaskStateError(
        "flushing tasks needs the task manager's database (options.pool, or DATABASE_URL for taskmgr): it knows which tasks waiting tasks name as prerequisite",
      );
    const query =
      'failed' in what
        ? `WorkflowType = '${WORKFLOW_TYPE}' AND ${this.queueClause()} AND TaskStatus = 'FAILED' AND ExecutionStatus != 'Running'`
        : `WorkflowType = '${WORKFLOW_TYPE}' AND ${this.queueClause()} AND TaskStatus IN ('COMPLETED', 'CANCELLED', '${MERGED}') AND ExecutionStatus != 'Running' AND CloseTime < '${what.completedBefore.toISOString()}'`;
    // A task that an open task names as its prerequisite stays (until a one-off dependant starts, a loop ends).
    let deleted = 0;
    let page: { workflowId: string; runId: string; continued: boolean }[] = [];
    const flushPage = async () => {
      const held = await this.stillHeld(
        await heldAsPrerequisites(
          this.pool!,
          page.map((wf) => wf.workflowId),
        ),
      );
      const gone: string[] = [];
      for (const wf of page.filter((w) => !held.has(w.workflowId))) {
        if (!(await this.deleteExecution(wf))) continue; // already gone
        deleted += 1;
        opts.onDeleted?.(wf.workflowId);
        // An earlier run of a recurring task that goes on: its keys and dependants are the loop's.
        if (!wf.continued) gone.push(wf.workflowId);
      }
      if (this.pool) await forgetTasks(this.pool, gone);
      page = [];
    };
    for await (const wf of this.client.workflow.list({ query })) {
      page.push({ workflowId: wf.workflowId, runId: wf.runId, continued: wf.status.name === 'CONTINUED_AS_NEW' });
      if (page.length >= 200) await flushPage();
    }
    await flushPage();
    return deleted;
  }

  /**
   * Of the prerequisites registered dependants hold, those an open dependant still holds. A
   * dependant that ended without saying so (terminated, or failed outside its code) would hold its
   * prerequisite for ever: its registration is dropped here.
   */
  private async stillHeld(registered: Map<string, string[]>): Promise<Set<string>> {
    const held = new Set<string>();
    for (const [prerequisite, dependants] of registered) {
      const open = await Promise.all(dependants.map((id) => this.isRunning(id)));
      const ended = dependants.filter((_, i) => !open[i]);
      if (ended.length) await Promise.all(ended.map((id) => unregisterDependant(this.pool!, id)));
      if (open.some(Boolean)) held.add(prerequisite);
    }
    return held;
  }

  private async isRunning(taskId: string): Promise<boolean> {
    return this.client.workflow
      .getHandle(taskId)
      .describe()
      .then(
        (d) => d.status.name === 'RUNNING',
        (err) => (err instanceof WorkflowNotFoundError ? false : Promise.reject(err)),
      );
  }

  /**
   * Kept for registry code that pokes a worker after adding a task (see the README's comparison).
   * Temporal dispatches every task and fires every timer itself, so there is nothing to do.
   */
  triggerAsyncTasks(): void {}
}

function toSummary(wf: WorkflowExecutionInfo): TaskSummary {
  const sa = wf.typedSearchAttributes;
  return {
    taskId: wf.workflowId,
    method: sa.get(TaskMethodKey),
    status: sa.get(TaskStatusKey),
    dataSourceKey: sa.get(DataSourceKeyKey),
    registryObjectKeys: sa.get(RegistryObjectKeysKey),
    addedAt: wf.startTime,
    closedAt: wf.closeTime,
    temporalStatus: wf.status.name,
    ...Object.fromEntries(Object.entries(wf.memo ?? {}).filter(([, v]) => v !== null && v !== undefined)),
  };
}

type PendingActivities = { heartbeatDetails?: { payloads?: unknown[] | null } | null }[] | null | undefined;

function heartbeatProgress(pending: PendingActivities): { progress?: TaskProgress; logTail?: TaskInfo['logs'] } | undefined {
  const payload = pending?.find((a) => a.heartbeatDetails?.payloads?.length)?.heartbeatDetails?.payloads?.[0];
  if (!payload) return undefined;
  try {
    return defaultPayloadConverter.fromPayload(payload as never);
  } catch {
    return undefined;
  }
}
