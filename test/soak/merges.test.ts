/**
 * More identical adds than the server takes updates in one run (2,000 by default,
 * limit.workflowExecutionMaxTotalUpdates) merge into one WAITING task: each merge is an update, and
 * the wait continues as new before its history or its update count reaches the server's limit.
 * No add is dropped and none becomes a task of its own.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { TaskClient } from '../../src/client/task-client.ts';
import { createTestDatabase, startTestWorker, temporalAddress } from '../helpers.ts';

const ADDS = Number(process.env.SOAK_MERGES ?? 2_001);
const HISTORY_LIMIT = 1000;

describe('merges into one waiting task', () => {
  it(`${ADDS} identical adds all merge, with every run's history under ${HISTORY_LIMIT} events`, { timeout: 15 * 60_000 }, async () => {
    const db = await createTestDatabase();
    const worker = await startTestWorker(db.pool, undefined, { TASK_WAIT_HISTORY_LIMIT: String(HISTORY_LIMIT) });
    const tasks = new TaskClient(new Client({ connection: await Connection.connect({ address: temporalAddress() }) }), worker.taskQueue, { pool: db.pool });
    try {
      // One absolute time for every add, so each is covered however long the adds take.
      const scheduledFor = new Date(Date.now() + 3_600_000).toISOString();
      const holder = await tasks.addNewTask('INDEX_RECORDS', { dataSourceKey: 'merged-into', scheduledFor });
      for (let i = 1; i <= ADDS; i++) {
        const id = await tasks.addNewTask('INDEX_RECORDS', { dataSourceKey: 'merged-into', scheduledFor });
        assert.equal(id, holder, `add ${i} became ${id}`);
      }
      const info = await tasks.getTask(holder);
      assert.equal(info.status, 'WAITING');
      assert.equal(info.mergedAdds, ADDS);
      const runs: number[] = [];
      for await (const wf of tasks.client.workflow.list({ query: `WorkflowId = '${holder}'` })) {
        runs.push(((await tasks.client.workflow.getHandle(holder, wf.runId).fetchHistory()).events ?? []).length);
      }
      assert.ok(runs.length > 1, `the wait continued as new (${runs.length} runs)`);
      const merged = [];
      for await (const wf of tasks.client.workflow.list({ query: `TaskQueue = '${worker.taskQueue}' AND TaskStatus = 'MERGED'` })) merged.push(wf.workflowId);
      assert.deepEqual(merged, [], 'no add left an execution of its own');
      for (const events of runs) assert.ok(events <= HISTORY_LIMIT + 30, `a run has ${events} events; the limit is ${HISTORY_LIMIT}`);
      await tasks.cancelTask(holder);
    } finally {
      await tasks.close();
      await worker.stop();
      await db.drop();
    }
  });
});
