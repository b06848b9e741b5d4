/** What registry code calls: registry operations that hand their follow-up to Temporal. */
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
} from '../shared.ts';
import { deleteProgressQuery, deleteRecordUpdate } from '../workflows/definitions.ts';
import type { deleteRecord as deleteRecordWorkflow } from '../workflows/deleteRecord.ts';
import { connecting, temporalTarget } from './connection.ts';

/** A bad argument from the caller; nothing was started or changed. */
export class InvalidInputError extends Error {
  override name = 'InvalidInputError';
}
export class RecordNotFoundError extends Error {
  override name = 'RecordNotFoundError';
}

export interface RegistryClientOptions {
  taskQueue: string;
  /** Follow-up tuning passed to the workflows; the workflow's defaults when unset. */
  followUp?: { batchSize?: number; concurrency?: number };
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

  /** How far a deletion's follow-up has got. */
  async deletionProgress(key: string): Promise<FollowUpProgress> {
    return this.deletionHandle(key).query(deleteProgressQuery);
  }
}
