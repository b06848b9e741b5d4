/** Activities that change records: the registry operation itself, done once per operation id. */
import { ApplicationFailure } from '@temporalio/activity';
import type { Pool } from '../db/pool.ts';
import { deleteRecordAndPlanFollowUp, completeOperation } from '../registry/operations.ts';
import { checkRecordKey, ERROR_TYPES, type DeletionOutcome, type OperationOutcome, type RegistryOperation } from '../shared.ts';
import { checkRegistryOperation } from '../registry/operation-input.ts';
import { applyRegistryOperation } from '../registry/registry-operations.ts';
import { failingFastOnBadData } from './failures.ts';

export const createRecordActivities = (deps: { pool: Pool }) => ({
  /** Deletes a record and plans the follow-up over its related records; idempotent per opId. */
  async deleteRecord(args: { key: string; opId: string; batchSize: number }): Promise<DeletionOutcome> {
    const bad = checkRecordKey(args.key);
    if (bad) throw ApplicationFailure.create({ message: bad, type: ERROR_TYPES.invalidInput, nonRetryable: true });
    return failingFastOnBadData(() => deleteRecordAndPlanFollowUp(deps.pool, args));
  },

  /** Applies a registry operation (delete draft, status change, import, clear) and plans its follow-up; idempotent per opId. */
  async applyOperation(args: { op: RegistryOperation; opId: string; batchSize: number }): Promise<OperationOutcome> {
    const bad = checkRegistryOperation(args.op);
    if (bad) throw ApplicationFailure.create({ message: bad, type: ERROR_TYPES.invalidInput, nonRetryable: true });
    return failingFastOnBadData(() => applyRegistryOperation(deps.pool, args.op, args.opId, args.batchSize));
  },

  /** Marks an operation's follow-up complete; idempotent. */
  async completeOperation(opId: string): Promise<void> {
    await failingFastOnBadData(() => completeOperation(deps.pool, opId));
  },
});
