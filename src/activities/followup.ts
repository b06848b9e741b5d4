/**
 * Activities of the coalesced follow-up: a registry change together with the hand-off of its
 * follow-up to the data source's coalescer, and the coalescer's rounds.
 */
import { ApplicationFailure } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import type { Pool } from '../db/pool.ts';
import { checkRegistryOperation } from '../registry/operation-input.ts';
import { completeOperation, completeRound, deleteRecordAndPlanFollowUp, planRound } from '../registry/operations.ts';
import { applyRegistryOperation } from '../registry/registry-operations.ts';
import { failingFastOnBadData } from './failures.ts';
import { checkRecordKey, coalescerWorkflowId, ERROR_TYPES, type DeletionOutcome, type OperationOutcome, type RegistryOperation } from '../shared.ts';
import type { CoalescerSettings } from '../workflows/coalesce-settings.ts';
import { followUpRequestSignal } from '../workflows/definitions.ts';

export const createFollowUpActivities = (deps: { pool: Pool; temporal: Client; taskQueue: string }) => {
  /**
   * Hands an operation's follow-up to its data source's coalescer (signal-with-start: started if
   * it is not running), or completes it at once when there is nothing to follow up. Safe to
   * repeat: the coalescer holds an operation once, and an empty repeat costs an empty round.
   */
  const handOff = async (op: { opId: string; batches: number; dataSourceKey?: string }, settings: CoalescerSettings) => {
    if (op.batches === 0 || !op.dataSourceKey) return completeOperation(deps.pool, op.opId);
    await deps.temporal.workflow.signalWithStart('coalesceFollowUps', {
      workflowId: coalescerWorkflowId(op.dataSourceKey, deps.taskQueue),
      taskQueue: deps.taskQueue,
      args: [{ dataSourceKey: op.dataSourceKey, settings }],
      signal: followUpRequestSignal,
      signalArgs: [{ opId: op.opId }],
    });
  };

  return {
    /**
     * Deletes a record, plans the follow-up over its related records and hands it to the data
     * source's coalescer. Idempotent per opId: a retry finds the committed delete and hands off again.
     */
    async deleteRecordAndHandOff(args: { key: string; opId: string; batchSize: number; settings: CoalescerSettings }): Promise<DeletionOutcome> {
      const bad = checkRecordKey(args.key);
      if (bad) throw ApplicationFailure.create({ message: bad, type: ERROR_TYPES.invalidInput, nonRetryable: true });
      const outcome = await failingFastOnBadData(() => deleteRecordAndPlanFollowUp(deps.pool, args));
      if (outcome.deleted) await handOff(outcome, args.settings);
      return outcome;
    },

    /** Applies a registry operation, plans its follow-up and hands it to the coalescer; idempotent per opId. */
    async applyOperationAndHandOff(args: { op: RegistryOperation; opId: string; batchSize: number; settings: CoalescerSettings }): Promise<OperationOutcome> {
      const bad = checkRegistryOperation(args.op);
      if (bad) throw ApplicationFailure.create({ message: bad, type: ERROR_TYPES.invalidInput, nonRetryable: true });
      const outcome = await failingFastOnBadData(() => applyRegistryOperation(deps.pool, args.op, args.opId, args.batchSize));
      await handOff(outcome, args.settings);
      return outcome;
    },

    /** Plans a coalesced round over the union of the operations' records; idempotent per roundId. */
    async planFollowUpRound(args: { roundId: string; opIds: string[]; dataSourceKey: string; batchSize: number }) {
      return failingFastOnBadData(() => planRound(deps.pool, args));
    },

    /** Marks a round and its operations complete; idempotent. */
    async completeFollowUpRound(args: { roundId: string; opIds: string[] }): Promise<void> {
      await completeRound(deps.pool, args.roundId, args.opIds);
    },
  };
};
