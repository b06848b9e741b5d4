/** What registry code calls: registry operations that hand their follow-up to Temporal. */
import crypto from 'node:crypto';
import {
  Client,
  Connection,
  WithStartWorkflowOperation,
  WorkflowUpdateFailedError,
  type WorkflowHandle,
} from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { Config } from '../config.ts';
import {
  RegistryObjectKeysKey,
  TaskMethodKey,
  TaskStatusKey,
  checkRecordKey,
  deleteRecordWorkflowId,
  type DeleteRecordResult,
  type DeletionOutcome,
  type FollowUpProgress,
  type HarvestedRecord,
  type OperationOutcome,
  type RecordStatus,
  type RegistryOperation,
  ERROR_TYPES,
} from '../shared.ts';
import { deleteProgressQuery, deleteRecordUpdate, registryOperationUpdate } from '../workflows/definitions.ts';
import type { registryOperation } from '../workflows/registryOperation.ts';
import { checkRegistryOperation } from '../registry/operation-input.ts';
import type { deleteRecord as deleteRecordWorkflow } from '../workflows/deleteRecord.ts';
import { connecting, temporalTarget } from './connection.ts';

/** A bad argument from the caller; nothing was started or changed. */
export class InvalidInputError extends Error {
  override name = 'InvalidInputError';
}
export class RecordNotFoundError extends Error {
  override name = 'RecordNotFoundError';
}
/** The operation does not apply to the record's state (a published record deleted as a draft, a status it cannot move to). */
export class OperationRefusedError extends Error {
  override name = 'OperationRefusedError';
}

export interface RegistryClientOptions {
  taskQueue: string;
  /** Follow-up tuning passed to the workflows; the workflow's defaults when unset. */
  followUp?: { batchSize?: number; concurrency?: number };
}

/** The activity's own failure inside the update's ActivityFailure wrapper. */
function innermostApplicationFailure(err: Error): ApplicationFailure | undefined {
  let found: ApplicationFailure | undefined;
  for (let e: unknown = err; e instanceof Error; e = e.cause) if (e instanceof ApplicationFailure) found = e;
  return found;
}

export class RegistryClient {
  constructor(
    readonly client: Client,
    readonly options: RegistryClientOptions,
  ) {}

  /** Connects with the project's configuration (see src/client/connection.ts). */
  static async connect(config: Config, addressOverride?: string): Promise<RegistryClient> {
    const target = temporalTarget(config, addressOverride);
    const connection = await connecting(target.connectionOptions.address, () => Connection.connect(target.connectionOptions));
    const client = new Client({ connection, namespace: target.namespace });
    return new RegistryClient(client, { taskQueue: config.temporal.taskQueue, followUp: config.followUp });
  }

  async close(): Promise<void> {
    await this.client.connection.close();
  }

  /**
   * Deletes a record. Resolves when the record is gone and the recheck / reindex / re-cache of
   * its related records is durably under way (update-with-start: both or neither).
   */
  async deleteRecord(key: string): Promise<DeletionOutcome & { workflowId: string }> {
    const bad = checkRecordKey(key);
    if (bad) throw new InvalidInputError(bad);
    const workflowId = deleteRecordWorkflowId(key);
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
      const outcome = await this.client.workflow.executeUpdateWithStart(deleteRecordUpdate, { startWorkflowOperation });
      return { ...outcome, workflowId };
    } catch (err) {
      if (err instanceof WorkflowUpdateFailedError && err.cause instanceof ApplicationFailure && err.cause.type === 'RecordNotFound') {
        throw new RecordNotFoundError(err.cause.message);
      }
      throw err;
    }
  }

  /** The deletion workflow of a key (the latest run). */
  deletionHandle(key: string): WorkflowHandle<typeof deleteRecordWorkflow> {
    return this.client.workflow.getHandle(deleteRecordWorkflowId(key));
  }

  /** Waits for a deletion's follow-up to finish and returns its summary. */
  async awaitDeletion(key: string): Promise<DeleteRecordResult> {
    return this.deletionHandle(key).result();
  }

  /**
   * Runs a registry operation: resolves once its change has committed and its follow-up (over
   * exactly the records it affects) is durably under way. `awaitOperation` waits for the follow-up.
   */
  async runOperation(op: RegistryOperation): Promise<OperationOutcome & { workflowId: string }> {
    const bad = checkRegistryOperation(op);
    if (bad) throw new InvalidInputError(bad);
    const subject = 'key' in op ? op.key : op.dataSourceKey;
    const workflowId = `registry-op:${op.kind}:${subject}:${crypto.randomBytes(4).toString('hex')}`;
    const startWorkflowOperation = new WithStartWorkflowOperation<typeof registryOperation>('registryOperation', {
      workflowId,
      taskQueue: this.options.taskQueue,
      args: [{ op, ...this.options.followUp }],
      workflowIdConflictPolicy: 'FAIL',
    });
    try {
      return { ...(await this.client.workflow.executeUpdateWithStart(registryOperationUpdate, { startWorkflowOperation })), workflowId };
    } catch (err) {
      const cause = err instanceof WorkflowUpdateFailedError ? innermostApplicationFailure(err) : undefined;
      if (cause?.type === ERROR_TYPES.operationRefused) throw new OperationRefusedError(cause.message);
      if (cause?.type === ERROR_TYPES.invalidInput) throw new InvalidInputError(cause.message);
      throw err;
    }
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
    return this.client.workflow.getHandle<typeof registryOperation>(workflowId).result();
  }

  /** How far a deletion's follow-up has got. */
  async deletionProgress(key: string): Promise<FollowUpProgress> {
    return this.deletionHandle(key).query(deleteProgressQuery);
  }
}
