/**
 * Waking a data source's coalescer: a signal naming an operation queued for it, with start when it
 * is not running. The hand-off activities wake it for the operation they queued; every worker also
 * sweeps for follow-ups that have waited too long, whose coalescer may be gone.
 */
import type { Client } from '@temporalio/client';
import type { Pool } from '../db/pool.ts';
import type { Logger } from '../log.ts';
import { every } from '../periodic.ts';
import { strandedFollowUps, type StrandedFollowUp } from '../registry/backlog.ts';
import { COALESCER_TASK_TIMEOUT, type CoalescerSettings } from '../workflows/coalesce-settings.ts';
import { followUpRequestSignal } from '../workflows/definitions.ts';
import { coalescerWorkflowId } from './workflow-ids.ts';

/** Signals the data source's coalescer that `opId` is queued, starting it if it is not running; safe to repeat. */
export async function wakeCoalescer(
  client: Client,
  args: { taskQueue: string; dataSourceKey: string; opId: string; overrides?: Partial<CoalescerSettings> },
): Promise<void> {
  await client.workflow.signalWithStart('coalesceFollowUps', {
    workflowId: coalescerWorkflowId(args.dataSourceKey, args.taskQueue),
    taskQueue: args.taskQueue,
    workflowTaskTimeout: COALESCER_TASK_TIMEOUT,
    args: [{ dataSourceKey: args.dataSourceKey, overrides: args.overrides ?? {} }],
    signal: followUpRequestSignal,
    signalArgs: [{ opId: args.opId }],
  });
}

/** The sweep looks this often (a quarter of the age it acts on), and at least every 30 s. */
export const sweepIntervalMs = (strandedAfterMs: number) => Math.min(30_000, Math.max(250, Math.round(strandedAfterMs / 4)));

/**
 * Wakes, every interval, the coalescer of each data source whose follow-ups have waited longer
 * than `strandedAfterMs`. Nothing else would: a coalescer terminated mid-round, or one whose mark
 * of being awake outlived it, leaves its operations queued until the next change in its data
 * source. An operation held by a round of the run that is running is left to it (a long round is
 * not signalled every interval); an unclaimed one is named, and a live coalescer takes it as an
 * arrival or ignores it as already queued. Each worker sweeps: N workers, N signals per interval.
 */
export function startStrandedFollowUpSweep(deps: { pool: Pool; client: Client; taskQueue: string; strandedAfterMs: number; logger: Logger }): {
  stop(): Promise<void>;
} {
  const wake = async (stranded: StrandedFollowUp) => {
    if (stranded.roundId && (await heldByRunningRound(deps.client, deps.taskQueue, stranded))) return;
    deps.logger.info({ dataSource: stranded.dataSourceKey, opId: stranded.opId }, 'follow-up waiting too long: waking its coalescer');
    await wakeCoalescer(deps.client, { taskQueue: deps.taskQueue, dataSourceKey: stranded.dataSourceKey, opId: stranded.opId });
  };
  const sweep = async () => {
    // Each data source on its own: one whose wake-up keeps failing must not hold back the others.
    for (const stranded of await strandedFollowUps(deps.pool, deps.strandedAfterMs)) {
      await wake(stranded).catch((err: Error) =>
        deps.logger.warn({ dataSource: stranded.dataSourceKey, err: err.message }, 'could not wake the coalescer of a stranded follow-up'),
      );
    }
  };
  return every(sweepIntervalMs(deps.strandedAfterMs), sweep, (message) => deps.logger.warn({ err: message }, 'sweep for stranded follow-ups failed'));
}

/** Whether the operation's round belongs to its coalescer's run that is running now (round ids begin with the run's ids). */
async function heldByRunningRound(client: Client, taskQueue: string, stranded: StrandedFollowUp): Promise<boolean> {
  const workflowId = coalescerWorkflowId(stranded.dataSourceKey, taskQueue);
  const run = await client.workflow
    .getHandle(workflowId)
    .describe()
    .catch(() => undefined);
  return run?.status.name === 'RUNNING' && stranded.roundId!.startsWith(`${workflowId}/${run.runId}/`);
}
