/** What registry code calls: registry operations that hand their follow-up to Temporal. */
import { UserError } from '../user-error.ts';
import crypto from 'node:crypto';
import { FollowUpNotices } from '../registry/followup-notices.ts';
import {
  Client,
  WithStartWorkflowOperation,
  WorkflowExecutionAlreadyStartedError,
  WorkflowUpdateFailedError,
  WorkflowUpdateStage,
  type WorkflowHandle,
} from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { Config } from '../config.ts';
import {
  RegistryObjectKeysKey,
  TaskMethodKey,
  TaskStatusKey,
  DataSourceKeyKey,
  checkRecordKey,
  type LevelChanges,
  type DeleteRecordResult,
  type DeletionOutcome,
  type FollowUpProgress,
  type HarvestedRecord,
  type OperationOutcome,
  type RecordStatus,
  type RegistryOperation,
  ERROR_TYPES,
} from '../shared.ts';
import { coalescerWorkflowId, deleteRecordWorkflowId, registryOperationWorkflowId } from './workflow-ids.ts';
import { deleteProgressQuery, deleteRecordUpdate, followUpStatusQuery, registryOperationUpdate, type FollowUpStatus } from '../workflows/definitions.ts';
import type { registryOperation } from '../workflows/registryOperation.ts';
import { checkRegistryOperation } from '../registry/operation-input.ts';
import { operationOutcome } from '../registry/operations.ts';
import type { Pool } from '../db/pool.ts';
import type { deleteRecord as deleteRecordWorkflow } from '../workflows/deleteRecord.ts';
import { causeChain, connectClient } from './connection.ts';
import { startedWithInput } from './own-start.ts';
import { answeredWithin, DEFAULT_ANSWER_LIMIT_MS, DEFAULT_WORKER_WAIT_MS, QueuedForWorkerError, queuedMessage } from './worker-wait.ts';

/** A bad argument from the caller; nothing was started or changed. */
export class InvalidInputError extends UserError {
  override name = 'InvalidInputError';
}
export class RecordNotFoundError extends UserError {
  override name = 'RecordNotFoundError';
  override readonly httpStatus = 404;
}
/** The operation does not apply to the record's state (a published record deleted as a draft, a status it cannot move to). */
/** PostgreSQL refused the operation's data (a constraint, a value past a limit); nothing was changed. */
export class DataRejectedError extends UserError {
  override name = 'DataRejectedError';
  override readonly httpStatus = 422;
}
export class OperationRefusedError extends UserError {
  override name = 'OperationRefusedError';
  override readonly httpStatus = 409;
}

export interface RegistryClientOptions {
  taskQueue: string;
  /**
   * The registry's PostgreSQL: every operation's outcome is read there (exact totals for as long as
   * the operation is kept). Without it, the coalescer is asked, and remembers only its current run.
   */
  pool?: Pool;
  /** Follow-up tuning passed to the workflows; the workflow's defaults when unset. */
  followUp?: { batchSize?: number; concurrency?: number; coalesce?: { quietMs?: number; maxWaitMs?: number } };
  /** How long a deletion or operation waits for a worker to carry it out (default 15 s); then QueuedForWorkerError. */
  workerWaitMs?: number;
  /** How long it waits at most while workers poll but do not answer (default 2 minutes); then QueuedForWorkerError. */
  answerLimitMs?: number;
}

/** The activity's own failure inside the update's ActivityFailure wrapper. */
function innermostApplicationFailure(err: Error): ApplicationFailure | undefined {
  let found: ApplicationFailure | undefined;
  for (const e of causeChain(err)) if (e instanceof ApplicationFailure) found = e;
  return found;
}

/** A failed update as the error class of its condition (one per condition, whichever operation met it); anything else as it is. */
function registryErrorOf(err: unknown): unknown {
  const cause = err instanceof WorkflowUpdateFailedError ? innermostApplicationFailure(err) : undefined;
  if (cause?.type === ERROR_TYPES.operationRefused) return new OperationRefusedError(cause.message);
  if (cause?.type === ERROR_TYPES.recordNotFound) return new RecordNotFoundError(cause.message);
  if (cause?.type === ERROR_TYPES.invalidInput) return new InvalidInputError(cause.message);
  if (cause?.type === ERROR_TYPES.dataRejected) return new DataRejectedError(cause.message);
  return err;
}

export class RegistryClient {
  /** Completion notices from PostgreSQL, for callers awaiting follow-ups (with a pool). */
  private notices?: FollowUpNotices;
  constructor(
    readonly client: Client,
    readonly options: RegistryClientOptions,
  ) {}

  /** Connects with the project's configuration (see src/client/connection.ts). */
  static async connect(config: Config, addressOverride?: string, pool?: Pool): Promise<RegistryClient> {
    const client = await connectClient(config, addressOverride);
    // No follow-up settings: the workers' configuration decides them.
    return new RegistryClient(client, { taskQueue: config.temporal.taskQueue, pool, workerWaitMs: config.workerWaitMs });
  }

  async close(): Promise<void> {
    await this.client.connection.close();
  }

  /**
   * Deletes a record. Resolves when the record is gone and the recheck / reindex / re-cache of
   * its related records is durably under way (update-with-start: both or neither).
   */
  async deleteRecord(key: string): Promise<DeletionOutcome & { workflowId: string; runId: string }> {
    const bad = checkRecordKey(key);
    if (bad) throw new InvalidInputError(bad);
    const workflowId = deleteRecordWorkflowId(key, this.options.taskQueue);
    const startWorkflowOperation = new WithStartWorkflowOperation<typeof deleteRecordWorkflow>('deleteRecord', {
      workflowId,
      taskQueue: this.options.taskQueue,
      args: [{ key, ...this.options.followUp }],
      // A deletion of this key already running takes the update: it deletes again if needed.
      workflowIdConflictPolicy: 'USE_EXISTING',
      typedSearchAttributes: [
        { key: TaskMethodKey, value: 'DELETE_RECORD' },
        { key: TaskStatusKey, value: 'STARTED' },
        { key: RegistryObjectKeysKey, value: [key] },
      ],
    });
    try {
      // Waits for the update to complete in the one call, as executeUpdateWithStart does (the SDK's
      // types admit only ACCEPTED here; the server takes COMPLETED), and keeps the handle for its run id.
      const waitForStage = WorkflowUpdateStage.COMPLETED as unknown as typeof WorkflowUpdateStage.ACCEPTED;
      const done = await this.carriedOut(workflowId, `the deletion of ${key} is queued`, async () => {
        const update = await this.client.workflow.startUpdateWithStart(deleteRecordUpdate, { startWorkflowOperation, waitForStage });
        return { outcome: await update.result(), runId: update.workflowRunId! };
      });
      // The run that deleted: a later delete of the same key (another run) must not change what this caller waits for.
      return { ...done.outcome, workflowId, runId: done.runId };
    } catch (err) {
      throw registryErrorOf(err);
    }
  }

  /** The deletion workflow of a key: the given run (deleteRecord's runId), else the latest. */
  deletionHandle(key: string, runId?: string): WorkflowHandle<typeof deleteRecordWorkflow> {
    return this.client.workflow.getHandle(deleteRecordWorkflowId(key, this.options.taskQueue), runId);
  }

  /** Waits for a deletion's follow-up to finish and returns its summary; give deleteRecord's runId to wait for that deletion. */
  async awaitDeletion(key: string, runId?: string): Promise<DeleteRecordResult> {
    return this.withFollowUp(await this.deletionHandle(key, runId).result());
  }

  /**
   * Completes a workflow's result with its coalesced follow-up: waits until the data source's
   * coalescer has processed every operation and adds the totals of the rounds that covered them.
   */
  private async withFollowUp<
    R extends {
      qualityChanges: LevelChanges;
      reindexed: number;
      recached: number;
      coalescedWith?: number;
      coalesced?: { dataSourceKey: string; opIds: string[] };
      affected?: number;
      plannedByRound?: boolean;
    },
  >(result: R): Promise<R> {
    if (!result.coalesced) return result;
    const out = { ...result, qualityChanges: { ...result.qualityChanges } };
    for (const opId of result.coalesced.opIds) {
      const status = this.options.pool ? await this.outcomeFromDatabase(opId) : await this.outcomeFromCoalescer(result.coalesced.dataSourceKey, opId);
      if (!status) continue; // forgotten by a coalescer, for a client without the database
      for (const [change, n] of Object.entries(status.qualityChanges ?? {}) as [string, number][])
        out.qualityChanges[change] = (out.qualityChanges[change] ?? 0) + n;
      out.reindexed += status.reindexed ?? 0;
      out.recached += status.recached ?? 0;
      out.coalescedWith = Math.max(out.coalescedWith ?? 1, status.coalescedWith ?? 1);
      // Counted by the round: this operation's own count from its row; a client without the database
      // knows only the round's records, shared like the round's other totals.
      if (out.plannedByRound) out.affected = (out.affected ?? 0) + (status.affected ?? status.roundRecords ?? 0);
    }
    return out;
  }

  /**
   * An operation's outcome as PostgreSQL keeps it (as long as its row exists): exact, whenever
   * asked; learnt from the completion's notice as it commits, not by asking again.
   */
  private async outcomeFromDatabase(opId: string): Promise<Partial<FollowUpStatus & { affected: number }> | undefined> {
    this.notices ??= new FollowUpNotices(this.options.pool!);
    return this.notices.waitUntil(async () => {
      const outcome = await operationOutcome(this.options.pool!, opId);
      if (outcome === 'unknown') throw new RecordNotFoundError(`operation ${opId} is not known (removed by retention?)`);
      return outcome;
    });
  }

  /**
   * Once PostgreSQL has every one of these operations' follow-ups completed (or forgotten by
   * retention): the related records their rounds counted. Undefined while any is under way.
   */
  private async operationsDone(opIds: string[]): Promise<{ affected: number } | undefined> {
    const outcomes = await Promise.all(opIds.map((opId) => operationOutcome(this.options.pool!, opId)));
    if (outcomes.some((o) => o === undefined)) return undefined;
    return { affected: outcomes.reduce((n, o) => n + (o === 'unknown' ? 0 : o!.affected), 0) };
  }

  /** Without the database: the coalescer's memory of this run (undefined once forgotten). */
  private async outcomeFromCoalescer(dataSourceKey: string, opId: string): Promise<(FollowUpStatus & { affected?: number }) | undefined> {
    const coalescer = this.client.workflow.getHandle(coalescerWorkflowId(dataSourceKey, this.options.taskQueue));
    for (let wait = 50; ; wait = Math.min(wait * 2, 1000)) {
      const status = await coalescer.query(followUpStatusQuery, opId);
      if (status.state === 'done') return status;
      if (status.state === 'unknown') return undefined;
      await new Promise((r) => setTimeout(r, wait));
    }
  }

  /**
   * Runs a registry operation: resolves once its change has committed and its follow-up (over
   * exactly the records it affects) is durably under way. `awaitOperation` waits for the follow-up.
   */
  async runOperation(op: RegistryOperation): Promise<OperationOutcome & { workflowId: string }> {
    const bad = checkRegistryOperation(op);
    if (bad) throw new InvalidInputError(bad);
    const subject = 'key' in op ? op.key : op.dataSourceKey;
    const workflowId = registryOperationWorkflowId(op.kind, subject, crypto.randomBytes(4).toString('hex'));
    const startWorkflowOperation = new WithStartWorkflowOperation<typeof registryOperation>('registryOperation', {
      workflowId,
      taskQueue: this.options.taskQueue,
      args: [{ op, ...this.options.followUp }],
      workflowIdConflictPolicy: 'FAIL',
    });
    try {
      return { ...(await this.startOperation(startWorkflowOperation, workflowId, op)), workflowId };
    } catch (err) {
      throw registryErrorOf(err);
    }
  }

  /** The operation's update-with-start; an "already started" that is our own start retried joins it (own-start.ts). */
  private async startOperation(
    start: WithStartWorkflowOperation<typeof registryOperation>,
    workflowId: string,
    op: RegistryOperation,
  ): Promise<OperationOutcome> {
    try {
      return await this.carriedOut(workflowId, `the ${op.kind} operation is queued`, () =>
        this.client.workflow.executeUpdateWithStart(registryOperationUpdate, { startWorkflowOperation: start }),
      );
    } catch (err) {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
      if (!(await startedWithInput(this.client, workflowId, { op, ...this.options.followUp }))) return this.runOperation(op);
      const handle = this.client.workflow.getHandle<typeof registryOperation>(workflowId);
      const running = (await handle.describe()).status.name === 'RUNNING';
      return this.carriedOut(workflowId, `the ${op.kind} operation is queued`, () =>
        running ? handle.executeUpdate(registryOperationUpdate) : handle.result(),
      );
    }
  }

  /** Waits for a worker to carry out `call`; with none polling after workerWaitMs, the work is queued for one: QueuedForWorkerError (worker-wait.ts). */
  private async carriedOut<T>(workflowId: string, what: string, call: () => Promise<T>): Promise<T> {
    const limitMs = this.options.answerLimitMs ?? DEFAULT_ANSWER_LIMIT_MS;
    const r = await answeredWithin(
      this.client,
      { workflowId, taskQueue: this.options.taskQueue, waitMs: this.options.workerWaitMs ?? DEFAULT_WORKER_WAIT_MS, limitMs },
      call,
    );
    if ('answer' in r) return r.answer;
    throw new QueuedForWorkerError(queuedMessage(r, what, this.options.taskQueue, limitMs));
  }

  /** Deletes a record that is not published (a draft). */
  deleteDraft(key: string) {
    return this.runOperation({ kind: 'DELETE_DRAFT', key });
  }

  /** Moves a record along the registry's status workflow (submit for assessment, approve, publish, back to draft...). */
  changeStatus(key: string, to: RecordStatus) {
    return this.runOperation({ kind: 'CHANGE_STATUS', key, to });
  }

  /** Imports (inserts or replaces) a harvested batch of records into a data source. */
  importRecords(dataSourceKey: string, records: HarvestedRecord[]) {
    return this.runOperation({ kind: 'IMPORT_RECORDS', dataSourceKey, records });
  }

  /** Deletes every record of a data source. */
  clearDataSource(dataSourceKey: string) {
    return this.runOperation({ kind: 'CLEAR_DATA_SOURCE', dataSourceKey });
  }

  /** Waits for an operation's follow-up and returns its totals. */
  async awaitOperation(workflowId: string) {
    return this.withFollowUp(await this.client.workflow.getHandle<typeof registryOperation>(workflowId).result());
  }

  /**
   * How far a deletion's follow-up has got: done when PostgreSQL has its operations completed (a
   * client with the database), otherwise as the data source's coalescer reports it. `runId` (from
   * deleteRecord) follows the caller's own deletion, whatever later deletes of the key do.
   */
  async deletionProgress(key: string, runId?: string): Promise<FollowUpProgress> {
    const handle = this.deletionHandle(key, runId);
    const progress = await handle.query(deleteProgressQuery);
    // Nothing related to follow up: done as soon as the record is gone.
    if (progress.phase === 'following-up' && progress.batchesTotal === 0 && !progress.plannedByRound) return { ...progress, phase: 'done' };
    const doneInDatabase =
      progress.phase === 'following-up' && progress.opIds?.length && this.options.pool ? await this.operationsDone(progress.opIds) : undefined;
    if (doneInDatabase)
      return {
        ...progress,
        phase: 'done',
        affected: progress.plannedByRound ? doneInDatabase.affected : progress.affected,
        batchesDone: progress.batchesTotal,
      };
    // A worker from before the progress named it (a rolling deploy) leaves it out: the search attribute then.
    const ds = progress.dataSourceKey ?? (await handle.describe()).typedSearchAttributes.get(DataSourceKeyKey);
    if (progress.phase !== 'following-up' || !progress.opIds?.length || !ds) return progress;
    const coalescer = this.client.workflow.getHandle(coalescerWorkflowId(ds, this.options.taskQueue));
    const statuses = await Promise.all(progress.opIds.map((opId) => coalescer.query(followUpStatusQuery, opId).catch(() => undefined)));
    if (statuses.some((s) => !s)) return progress; // the coalescer has not started yet
    const done = statuses.every((s) => s!.state === 'done' || s!.state === 'unknown');
    // Batches of the round in progress are the round's; shown as a share of this deletion's batches.
    const share = statuses.map((s) =>
      s!.state === 'done' || s!.state === 'unknown' ? 1 : s!.state === 'processing' && s!.batchesTotal ? s!.batchesDone! / s!.batchesTotal : 0,
    );
    const fraction = share.reduce((a, b) => a + b, 0) / share.length;
    // Planned by their rounds: the batches are the rounds' (this deletion has no count of its own).
    if (progress.plannedByRound) {
      const affected = statuses.reduce((n, s) => n + (s!.roundRecords ?? 0), 0);
      return { ...progress, phase: done ? 'done' : 'following-up', affected, ...roundBatches(statuses as FollowUpStatus[]) };
    }
    return { ...progress, phase: done ? 'done' : 'following-up', batchesDone: done ? progress.batchesTotal : Math.floor(fraction * progress.batchesTotal) };
  }
}

/** The batches of the rounds processing these operations (done ones count as a whole). */
function roundBatches(statuses: FollowUpStatus[]): { batchesTotal: number; batchesDone: number } {
  const processing = statuses.filter((s) => s.state === 'processing');
  const total = processing.reduce((n, s) => n + (s.batchesTotal ?? 0), 0);
  const done = processing.reduce((n, s) => n + (s.batchesDone ?? 0), 0);
  return processing.length ? { batchesTotal: total, batchesDone: done } : { batchesTotal: 1, batchesDone: statuses.every((s) => s.state !== 'queued') ? 1 : 0 };
}
