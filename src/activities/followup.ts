/**
 * Activities of the coalesced follow-up: a registry change together with the hand-off of its
 * follow-up to the data source's coalescer, and the coalescer's rounds.
 */
import { ApplicationFailure } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import type { Pool } from '../db/pool.ts';
import { checkRegistryOperation } from '../registry/operation-input.ts';
import {
  completeOperation,
  coalescerMaySleep,
  completeRound,
  deleteRecordAndPlanFollowUp,
  deleteRecordForRound,
  planRound,
  queueForCoalescer,
  type RoundTotals,
} from '../registry/operations.ts';
import { applyRegistryOperation } from '../registry/registry-operations.ts';
import { failingFastOnBadData } from './failures.ts';
import { currentTraceCarrier, outsideTrace, tracingOn } from '../telemetry/tracing.ts';
import { checkRecordKey, ERROR_TYPES, type DeletionOutcome, type OperationOutcome, type RegistryOperation } from '../shared.ts';
import { coalescerWorkflowId } from '../client/workflow-ids.ts';
import { DEFAULT_COALESCER_SETTINGS, type CoalescerSettings } from '../workflows/coalesce-settings.ts';
import { wakeCoalescer } from '../client/coalescer-wake.ts';

export const createFollowUpActivities = (deps: { pool: Pool; temporal: Client; taskQueue: string; followUp?: CoalescerSettings }) => {
  /** The worker's configuration (FOLLOWUP_*), under what a caller set explicitly. */
  const settingsWith = (overrides: Partial<CoalescerSettings> = {}): CoalescerSettings => ({
    ...DEFAULT_COALESCER_SETTINGS,
    ...deps.followUp,
    ...definedOnly(overrides),
  });
  /**
   * Queues an operation for its data source's coalescer in PostgreSQL and returns its data source,
   * or completes the operation at once when there is nothing to follow up. Operations made here are
   * already queued (or complete) by their own transaction (queuedOrDoneAtCommit): this changes
   * nothing for them, and queues those a retry finds committed by the code before that.
   */
  const queue = async (op: { opId: string; batches: number; dataSourceKey?: string; plannedByRound?: boolean }): Promise<string | undefined> => {
    if ((op.batches === 0 && !op.plannedByRound) || !op.dataSourceKey) {
      await completeOperation(deps.pool, op.opId);
      return undefined;
    }
    await queueForCoalescer(deps.pool, op.opId, currentTraceCarrier());
    return op.dataSourceKey;
  };
  /**
   * Hands an operation's follow-up to its data source's coalescer (signal-with-start: started if
   * it is not running), or completes it at once when there is nothing to follow up. Safe to
   * repeat: the coalescer holds an operation once, and an empty repeat costs an empty round.
   */
  const handOff = async (
    op: { opId: string; batches: number; dataSourceKey?: string; plannedByRound?: boolean },
    overrides: Partial<CoalescerSettings> = {},
  ) => {
    // Queued in PostgreSQL first: the signal only wakes the coalescer, which claims its queue there.
    const dataSourceKey = await queue(op);
    if (!dataSourceKey) return;
    // The coalescer serves many callers: it keeps traces of its own; the round's batches join this
    // caller's trace through the carrier queued above.
    await outsideTrace(() => wakeCoalescer(deps.temporal, { taskQueue: deps.taskQueue, dataSourceKey, opId: op.opId, overrides: definedOnly(overrides) }));
  };
  /** Deletes a record and plans the follow-up over its related records; idempotent per opId. */
  const deleteAndPlan = async (args: { key: string; opId: string; batchSize?: number; settings?: Partial<CoalescerSettings> }) => {
    const bad = checkRecordKey(args.key);
    if (bad) throw ApplicationFailure.create({ message: bad, type: ERROR_TYPES.invalidInput, nonRetryable: true });
    const batchSize = args.batchSize ?? settingsWith(args.settings).batchSize;
    return failingFastOnBadData(() => deleteRecordAndPlanFollowUp(deps.pool, { ...args, batchSize, forCoalescer: { traceCarrier: currentTraceCarrier() } }));
  };

  return {
    /**
     * Deletes a record, plans the follow-up over its related records and hands it to the data
     * source's coalescer. Idempotent per opId: a retry finds the committed delete and hands off again.
     */
    async deleteRecordAndHandOff(args: { key: string; opId: string; batchSize?: number; settings?: Partial<CoalescerSettings> }): Promise<DeletionOutcome> {
      const outcome = await deleteAndPlan(args);
      if (outcome.deleted) await handOff(outcome, args.settings);
      return outcome;
    },

    /**
     * Deletes a record and queues its follow-up for the data source's coalescer, whose round finds
     * the related records; does not wake it: the workflow wakes it after answering its caller.
     * Returns the coalescer's workflow id (none when the record had no relations: nothing to follow
     * up). Idempotent per opId. (Executions that recorded this
     * activity before got a planned outcome; they replay from their history.)
     */
    async deleteRecordAndQueue(args: { key: string; opId: string; batchSize?: number; settings?: Partial<CoalescerSettings> }): Promise<QueuedDeletion> {
      const bad = checkRecordKey(args.key);
      if (bad) throw ApplicationFailure.create({ message: bad, type: ERROR_TYPES.invalidInput, nonRetryable: true });
      const { outcome, coalescerAwake } = await failingFastOnBadData(() => deleteRecordForRound(deps.pool, { ...args, traceCarrier: currentTraceCarrier() }));
      // An awake coalescer looks at its queue before it sleeps: no wake-up (and no second workflow task) needed.
      return outcome.plannedByRound && outcome.dataSourceKey && !coalescerAwake
        ? { outcome, coalescerId: coalescerWorkflowId(outcome.dataSourceKey, deps.taskQueue) }
        : { outcome };
    },

    /** Wakes the data source's coalescer for a queued operation, starting it if it is not running; safe to repeat. */
    async handOffFollowUp(args: { op: DeletionOutcome; settings?: Partial<CoalescerSettings> }): Promise<void> {
      await handOff(args.op, args.settings);
    },

    /** Applies a registry operation, plans its follow-up and hands it to the coalescer; idempotent per opId. */
    async applyOperationAndHandOff(args: {
      op: RegistryOperation;
      opId: string;
      batchSize?: number;
      settings?: Partial<CoalescerSettings>;
    }): Promise<OperationOutcome> {
      const bad = checkRegistryOperation(args.op);
      if (bad) throw ApplicationFailure.create({ message: bad, type: ERROR_TYPES.invalidInput, nonRetryable: true });
      const batchSize = args.batchSize ?? settingsWith(args.settings).batchSize;
      const outcome = await failingFastOnBadData(() =>
        applyRegistryOperation(deps.pool, args.op, args.opId, batchSize, { traceCarrier: currentTraceCarrier() }),
      );
      await handOff(outcome, args.settings);
      return outcome;
    },

    /**
     * Plans a coalesced round over the queued operations' records (and any named ones); idempotent
     * per roundId. Returns the settings to run it with: the worker's configuration, read each round,
     * under the coalescer's explicit overrides.
     */
    async planFollowUpRound(args: { roundId: string; opIds: string[]; dataSourceKey: string; batchSize?: number; overrides?: Partial<CoalescerSettings> }) {
      const settings = settingsWith(args.overrides);
      const plan = await failingFastOnBadData(() =>
        planRound(deps.pool, { ...args, batchSize: args.batchSize ?? settings.batchSize, keepTraces: tracingOn() }),
      );
      return { ...plan, settings };
    },

    /**
     * Marks a round and its operations complete and keeps the round's totals for their callers;
     * idempotent. Then checks whether operations queued without waking the coalescer wait (`more`:
     * it goes on) or it may sleep (coalescerMaySleep).
     */
    async completeFollowUpRound(args: { roundId: string; opIds: string[]; totals?: RoundTotals; dataSourceKey: string }): Promise<{ more: boolean }> {
      await failingFastOnBadData(() => completeRound(deps.pool, args.roundId, args.opIds, args.totals));
      return coalescerMaySleep(deps.pool, args.dataSourceKey);
    },
  };
};

/** A deletion queued for its coalescer, and the coalescer to wake (none when there is nothing to follow up). */
export interface QueuedDeletion {
  outcome: DeletionOutcome;
  coalescerId?: string;
}

/** The fields that are set (a caller's explicit choices), so that they do not mask defaults with undefined. */
function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o ?? {}).filter(([, v]) => v !== undefined)) as Partial<T>;
}
