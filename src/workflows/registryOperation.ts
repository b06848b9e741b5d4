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
import { checkRegistryOperation } from '../registry/operation-input.ts';
import {
  DataSourceKeyKey,
  ERROR_TYPES,
  RegistryObjectKeysKey,
  TaskMethodKey,
  TaskStatusKey,
  type OperationOutcome,
  type RegistryOperation,
} from '../shared.ts';
import { COALESCE_PATCH } from './coalesce-settings.ts';
import { deleteProgressQuery, registryOperationUpdate } from './definitions.ts';
import { followUp, type FollowUpTotals } from './followup.ts';
import { RETRY_FOREVER_CAPPED } from './retry.ts';

const { applyOperation, completeOperation } = proxyActivities<Activities>({ startToCloseTimeout: '5 minutes', retry: RETRY_FOREVER_CAPPED });
// From the coalescing version on, the change is a local activity (one round trip less before the answer).
const local = proxyLocalActivities<Activities>({ startToCloseTimeout: '5 minutes', retry: RETRY_FOREVER_CAPPED });

/** What the workflow returns; with `coalesced`, the totals come from the coalescer (awaitOperation). */
export type OperationResult = OperationOutcome & FollowUpTotals & { coalescedWith?: number; coalesced?: { dataSourceKey: string; opIds: string[] } };

export interface RegistryOperationInput {
  op: RegistryOperation;
  batchSize?: number;
  concurrency?: number;
  coalesce?: { quietMs?: number; maxWaitMs?: number };
}

/**
 * A registry operation (delete a draft, change a status, import a harvested batch, clear a data
 * source) and its follow-up over exactly the records it affected. Callers use update-with-start
 * (`registryOperationUpdate`), answered once the change has committed, as for deleteRecord.
 */
export async function registryOperation(input: RegistryOperationInput): Promise<OperationResult> {
  const bad = checkRegistryOperation(input?.op);
  if (bad) throw ApplicationFailure.create({ message: bad, type: ERROR_TYPES.invalidInput, nonRetryable: true });
  const { op } = input;
  const { workflowId, runId } = workflowInfo();
  const progress = {
    key: 'key' in op ? op.key : op.dataSourceKey,
    phase: 'deleting' as 'deleting' | 'following-up' | 'done',
    affected: 0,
    batchesTotal: 0,
    batchesDone: 0,
  };
  upsertSearchAttributes([
    { key: TaskMethodKey, value: op.kind },
    { key: TaskStatusKey, value: 'STARTED' },
    ...('key' in op ? [{ key: RegistryObjectKeysKey, value: [op.key] }] : []),
    ...('dataSourceKey' in op ? [{ key: DataSourceKeyKey, value: op.dataSourceKey }] : []),
  ]);
  const coalesce = patched(COALESCE_PATCH);
  const batchSize = input.batchSize ?? 500;
  const opId = `${workflowId}/${runId}`;
  // From the coalescing version on: the change and the hand-off to the coalescer in one local activity.
  const applied = coalesce
    ? // Only what the caller set: the rest comes from the workers' configuration.
      local.applyOperationAndHandOff({
        op,
        opId,
        batchSize: input.batchSize,
        settings: { batchSize: input.batchSize, concurrency: input.concurrency, ...input.coalesce },
      })
    : applyOperation({ op, opId, batchSize });
  setHandler(registryOperationUpdate, () => applied);
  setHandler(deleteProgressQuery, () => progress);
  try {
    const outcome = await applied;
    if (outcome.dataSourceKey) upsertSearchAttributes([{ key: DataSourceKeyKey, value: outcome.dataSourceKey }]);
    progress.phase = 'following-up';
    progress.affected = outcome.affected;
    progress.batchesTotal = outcome.batches;
    const totals: FollowUpTotals = { qualityChanges: {}, reindexed: 0, recached: 0 };
    if (coalesce) {
      // The follow-up belongs to the coalescer now (RegistryClient.awaitOperation asks it how it ends).
      upsertSearchAttributes([{ key: TaskStatusKey, value: 'COMPLETED' }]);
      await condition(allHandlersFinished);
      const coalesced = outcome.batches > 0 && outcome.dataSourceKey ? { dataSourceKey: outcome.dataSourceKey, opIds: [outcome.opId] } : undefined;
      return { ...outcome, ...totals, ...(coalesced ? { coalesced } : {}) };
    } else {
      await followUp(outcome, input.concurrency ?? 2, totals, () => (progress.batchesDone += 1));
      await completeOperation(outcome.opId);
    }
    progress.phase = 'done';
    upsertSearchAttributes([{ key: TaskStatusKey, value: 'COMPLETED' }]);
    await condition(allHandlersFinished);
    return { ...outcome, ...totals };
  } catch (err) {
    upsertSearchAttributes([{ key: TaskStatusKey, value: 'FAILED' }]);
    throw err;
  }
}
