/** Activities that change records: the registry operation itself, done once per operation id. */
import { ApplicationFailure } from '@temporalio/activity';
import type { Pool } from '../db/pool.ts';
import { deleteRecordAndPlanFollowUp, completeOperation } from '../registry/operations.ts';
import { checkRecordKey, ERROR_TYPES, type DeletionOutcome } from '../shared.ts';

export const createRecordActivities = (deps: { pool: Pool }) => ({
  /** Deletes a record and plans the follow-up over its related records; idempotent per opId. */
  async deleteRecord(args: { key: string; opId: string; batchSize: number }): Promise<DeletionOutcome> {
    const bad = checkRecordKey(args.key);
    if (bad) throw ApplicationFailure.create({ message: bad, type: ERROR_TYPES.invalidInput, nonRetryable: true });
    return deleteRecordAndPlanFollowUp(deps.pool, args);
  },

  /** Marks an operation's follow-up complete; idempotent. */
  async completeOperation(opId: string): Promise<void> {
    await completeOperation(deps.pool, opId);
  },
});
