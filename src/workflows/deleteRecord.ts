import {
  ApplicationFailure,
  allHandlersFinished,
  condition,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities/index.ts';
import {
  DataSourceKeyKey,
  ERROR_TYPES,
  RegistryObjectKeysKey,
  TaskMethodKey,
  TaskStatusKey,
  checkRecordKey,
  type DeleteRecordInput,
  type DeleteRecordResult,
  type DeletionOutcome,
  type FollowUpProgress,
} from '../shared.ts';
import { deleteProgressQuery, deleteRecordUpdate } from './definitions.ts';
import { COALESCE_PATCH } from './coalesce-settings.ts';
import { followUp } from './followup.ts';
import { RETRY_FOREVER_CAPPED } from './retry.ts';

const { deleteRecord: deleteRecordActivity, completeOperation } = proxyActivities<Activities>({
  startToCloseTimeout: '2 minutes',
  retry: RETRY_FOREVER_CAPPED,
});
// From the coalescing version on, the delete itself is a local activity: it runs on the worker that
// holds the workflow task, so the caller's answer waits for one round trip less.
const local = proxyLocalActivities<Activities>({ startToCloseTimeout: '2 minutes', retry: RETRY_FOREVER_CAPPED });

const DEFAULT_BATCH_SIZE = 500;
/** From this version on, only the first update gets the initial delete's outcome. */
const ONE_INITIAL_PATCH = 'one-update-per-initial-delete';
const DEFAULT_CONCURRENCY = 2;

/**
 * Deletes one registry record, then rechecks, reindexes and re-caches every record related to it.
 *
 * Callers use update-with-start (`deleteRecordUpdate`): the update returns when the delete has
 * committed, and because the update runs inside this already-started workflow, the follow-up
 * cannot be lost between the two. Started plainly (temporal CLI), it does the same work with
 * nobody waiting. A later update on a running instance deletes again (the key may have been
 * re-created) and queues that follow-up too.
 */
export async function deleteRecord(input: DeleteRecordInput): Promise<DeleteRecordResult> {
  const bad = checkRecordKey(input?.key);
  if (bad) throw ApplicationFailure.create({ message: bad, type: ERROR_TYPES.invalidInput, nonRetryable: true });
  const { key } = input;
  const batchSize = input.batchSize ?? DEFAULT_BATCH_SIZE;
  const concurrency = input.concurrency ?? DEFAULT_CONCURRENCY;

  const pending: DeletionOutcome[] = [];
  const progress: FollowUpProgress = { key, phase: 'deleting', affected: 0, batchesTotal: 0, batchesDone: 0 };
  let rounds = 0;
  // Set here too, not only by the client, so a start from the temporal CLI is listed the same way.
  upsertSearchAttributes([
    { key: TaskMethodKey, value: 'DELETE_RECORD' },
    { key: TaskStatusKey, value: 'STARTED' },
    { key: RegistryObjectKeysKey, value: [key] },
  ]);

  const deleteOnce = async (): Promise<DeletionOutcome> => {
    rounds += 1;
    const { workflowId, runId } = workflowInfo();
    const opId = `${workflowId}/${runId}/${rounds}`;
    // From the coalescing version on: the delete and the hand-off to the data source's coalescer
    // in one local activity, on the worker that holds this workflow task (one round trip less).
    const outcome = patched(COALESCE_PATCH)
      ? // Only what the caller set: the rest comes from the workers' configuration.
        await local.deleteRecordAndHandOff({
          key,
          opId,
          batchSize: input.batchSize,
          settings: { batchSize: input.batchSize, concurrency: input.concurrency, ...input.coalesce },
        })
      : await deleteRecordActivity({ key, opId, batchSize });
    if (outcome.deleted) {
      pending.push(outcome);
      progress.affected += outcome.affected;
      progress.batchesTotal += outcome.batches;
      progress.opIds = [...(progress.opIds ?? []), outcome.opId];
    }
    return outcome;
  };

  let initial: Promise<DeletionOutcome> | undefined = deleteOnce();
  const first = initial;

  setHandler(deleteRecordUpdate, async () => {
    // The first update (the one that started us) waits for the initial delete; later ones delete
    // again. Taken at once: of two concurrent deletes of one key, only the first gets the initial one.
    let outcome: DeletionOutcome;
    if (patched(ONE_INITIAL_PATCH)) {
      const mine = initial;
      initial = undefined;
      outcome = await (mine ?? deleteOnce());
    } else {
      outcome = await (initial ?? deleteOnce());
      initial = undefined;
    }
    if (!outcome.deleted) {
      throw ApplicationFailure.create({ message: `record ${JSON.stringify(key)} does not exist`, type: ERROR_TYPES.recordNotFound, nonRetryable: true });
    }
    return outcome;
  });
  setHandler(deleteProgressQuery, () => progress);
  // Executions started before coalescing run their follow-up themselves, as they recorded.
  const coalesce = patched(COALESCE_PATCH);

  try {
    const firstOutcome = await first;
    if (firstOutcome.deleted && firstOutcome.dataSourceKey) {
      upsertSearchAttributes([{ key: DataSourceKeyKey, value: firstOutcome.dataSourceKey }]);
    }
    const result: DeleteRecordResult = { ...firstOutcome, qualityChanges: {}, reindexed: 0, recached: 0 };
    progress.phase = 'following-up';
    if (coalesce) {
      // The follow-up belongs to the coalescer now (RegistryClient.awaitDeletion asks it how it ends).
      await condition(allHandlersFinished);
      if (!firstOutcome.deleted && rounds === 1) {
        throw ApplicationFailure.create({ message: `record ${JSON.stringify(key)} does not exist`, type: ERROR_TYPES.recordNotFound, nonRetryable: true });
      }
      upsertSearchAttributes([{ key: TaskStatusKey, value: 'COMPLETED' }]);
      const handedOff = pending.filter((op) => op.batches > 0 && op.dataSourceKey);
      if (handedOff.length) result.coalesced = { dataSourceKey: handedOff[0]!.dataSourceKey!, opIds: handedOff.map((op) => op.opId) };
      return result;
    }
    for (;;) {
      await condition(() => pending.length > 0 || allHandlersFinished());
      const op = pending.shift();
      if (!op) break;
      await followUp(op, concurrency, result, () => (progress.batchesDone += 1));
      await completeOperation(op.opId);
    }
    progress.phase = 'done';
    if (!firstOutcome.deleted && rounds === 1) {
      throw ApplicationFailure.create({ message: `record ${JSON.stringify(key)} does not exist`, type: ERROR_TYPES.recordNotFound, nonRetryable: true });
    }
    upsertSearchAttributes([{ key: TaskStatusKey, value: 'COMPLETED' }]);
    return result;
  } catch (err) {
    upsertSearchAttributes([{ key: TaskStatusKey, value: 'FAILED' }]);
    throw err;
  }
}
