/**
 * The server's limit of 10,000 signals per execution (`history.maximumSignalsPerExecution`, kept by
 * the test server) against the coalescer, which every deletion of its data source wakes with a
 * signal. A run that has taken 10,000 refuses the next; a deletion whose wake-up is refused must
 * still be followed up: the refused signal falls back to the hand-off activity, which retries until
 * the coalescer has continued as new (it is past the server's suggestion by then), and the
 * operation waits in PostgreSQL's queue meanwhile. The run's 10,000 signals reach the worker in one
 * workflow task, whose code took longer than the SDK's 5 s on a busy machine: it failed every
 * time, the workflow thread crashed, and the coalescer was stuck for good (run this file beside two
 * `node -e 'for(;;){}'` to see it); the worker now allows 30 s, and the coalescer's workflow task
 * timeout is 30 s.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { coalescerWorkflowId } from '../../src/client/workflow-ids.ts';
import { seedRegistry, type SeedSummary } from '../../src/registry/seed.ts';
import { COALESCER_TASK_TIMEOUT } from '../../src/workflows/coalesce-settings.ts';
import { followUpRequestSignal } from '../../src/workflows/definitions.ts';
import { createTestDatabase, eventually, startTestWorker, testClient, uniqueName, type TestDatabase } from '../helpers.ts';

const SIGNALS_PER_EXECUTION = 10_000;
const SIGNAL_LIMIT_MESSAGE = /exceeded workflow execution limit for signal events/;

describe('the coalescer at the server’s signal limit', () => {
  let db: TestDatabase;
  let seeded: SeedSummary;

  before(async () => {
    db = await createTestDatabase();
    seeded = await seedRegistry(db.pool, { records: 200, dataSources: 1, seed: 71 });
  });
  after(async () => db?.drop());

  it('a deletion whose wake-up the server refuses (10,000 signals in the run) is still followed up', { timeout: 300_000 }, async () => {
    const taskQueue = uniqueName('registry-signal-limit');
    const ds = seeded.dataSources[0]!;
    const registry = await testClient(taskQueue, { coalesce: { quietMs: 100, maxWaitMs: 1000 } }, db.pool);
    const coalescerId = coalescerWorkflowId(ds, taskQueue);
    const holder = await db.pool.connect();
    let worker: Awaited<ReturnType<typeof startTestWorker>> | undefined;
    try {
      // No worker yet: the coalescer's run takes 10,000 wake-ups (operations that are not queued).
      await registry.client.workflow.signalWithStart('coalesceFollowUps', {
        workflowId: coalescerId,
        taskQueue,
        workflowTaskTimeout: COALESCER_TASK_TIMEOUT, // as the hand-off starts it
        args: [{ dataSourceKey: ds }],
        signal: followUpRequestSignal,
        signalArgs: [{ opId: 'not-queued-0' }],
      });
      const coalescer = registry.client.workflow.getHandle(coalescerId);
      const firstRunId = (await coalescer.describe()).runId;
      for (let i = 1; i < SIGNALS_PER_EXECUTION; i += 100) {
        const ids = Array.from({ length: Math.min(100, SIGNALS_PER_EXECUTION - i) }, (_, j) => `not-queued-${i + j}`);
        await Promise.all(ids.map((opId) => coalescer.signal(followUpRequestSignal, { opId })));
      }
      await assert.rejects(
        coalescer.signal(followUpRequestSignal, { opId: 'one-too-many' }),
        (err: Error) => SIGNAL_LIMIT_MESSAGE.test(`${err.message} ${(err.cause as Error | undefined)?.message}`),
        'the server keeps the limit',
      );

      // The run's round is held until the deletion's wake-up was refused: before it marks the
      // coalescer awake (which would spare the deletion its wake-up), and before its plan writes
      // followup_items. Deletions still read the mark (a share lock lets them).
      await holder.query('BEGIN');
      await holder.query('LOCK TABLE coalescer_awake, followup_items IN SHARE MODE');
      worker = await startTestWorker(db.pool, taskQueue);
      // The SDK's 5 s for a workflow task's code is too short for 10,000 signals on a busy machine.
      assert.equal(worker.worker.workflowTaskLimitMs(), 30_000);
      const key = (
        await db.pool.query<{ key: string }>(
          `SELECT ro.key FROM registry_objects ro WHERE EXISTS (SELECT 1 FROM relations r WHERE r.from_id = ro.id) ORDER BY ro.key LIMIT 1`,
        )
      ).rows[0]!.key;
      const deletion = await registry.deleteRecord(key);
      assert.equal(deletion.deleted, true);
      const refused = await eventually(
        async () => {
          const history = await registry.client.workflow.getHandle(deletion.workflowId, deletion.runId).fetchHistory();
          return history.events?.some((e) => e.signalExternalWorkflowExecutionFailedEventAttributes) ?? false;
        },
        60_000,
        200,
      );
      assert.ok(refused, "the deletion's wake-up signal was refused");
      await holder.query('COMMIT');

      const result = await registry.awaitDeletion(key, deletion.runId);
      assert.ok(result.affected > 0 && result.reindexed > 0, `the deletion was followed up: ${JSON.stringify(result)}`);
      const op = await db.pool.query<{ completed_at: Date | null }>('SELECT completed_at FROM registry_operations WHERE op_id = $1', [deletion.opId]);
      assert.ok(op.rows[0]?.completed_at, 'its operation completed');
      const next = await coalescer.describe();
      assert.notEqual(next.runId, firstRunId, 'the coalescer continued as new');
      assert.equal(Number(next.raw.executionConfig?.defaultWorkflowTaskTimeout?.seconds), 30, 'its next run keeps the longer workflow task timeout');
    } finally {
      await holder.query('ROLLBACK').catch(() => undefined);
      holder.release();
      await worker?.stop();
      await registry.close();
    }
  });
});
