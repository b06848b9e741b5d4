/**
 * A dependant waiting a long time for its prerequisite, in compressed time: the recheck interval
 * is lowered, so many rechecks happen in seconds. Shared by the short integration test and the
 * 30-day soak (test/soak). Asserts what keeps a wait of up to 366 days alive: every run's history
 * stays under the limit (the wait continues as new), and the prerequisite receives no signal per recheck.
 */
import assert from 'node:assert/strict';
import { Client, Connection } from '@temporalio/client';
import { TaskClient } from '../src/client/task-client.ts';
import { createTestDatabase, eventually, startTestWorker, temporalAddress, type TestDatabase, type TestWorker } from './helpers.ts';

export interface LongWaitCase {
  rechecks: number;
  historyLimit: number;
  recheck: string;
  timeoutMs: number;
}

export async function runLongWait(c: LongWaitCase): Promise<void> {
  let db: TestDatabase | undefined;
  let worker: TestWorker | undefined;
  let tasks: TaskClient | undefined;
  try {
    db = await createTestDatabase();
    worker = await startTestWorker(db.pool, undefined, { TASK_PREREQUISITE_RECHECK: c.recheck, TASK_WAIT_HISTORY_LIMIT: String(c.historyLimit) });
    tasks = new TaskClient(new Client({ connection: await Connection.connect({ address: temporalAddress() }) }), worker.taskQueue, { pool: db.pool });
    const prerequisite = await tasks.addNewTask('RUN_QUALITY_CHECK', { dataSourceKey: 'far-away', scheduledFor: '300 days' });
    const dependants = [
      await tasks.addNewTask('GENERATE_CACHE', { dataSourceKey: 'far-away', prerequisiteTaskId: prerequisite }),
      await tasks.addNewTask('INDEX_RECORDS', { dataSourceKey: 'far-away', prerequisiteTaskId: prerequisite, scheduledFor: '200 days' }),
    ];
    const client = tasks.client;
    const runsOf = async (id: string) => {
      const runs: { runId: string; events: number; rechecks: number }[] = [];
      for await (const wf of client.workflow.list({ query: `WorkflowId = '${id}'` })) {
        const events = (await client.workflow.getHandle(id, wf.runId).fetchHistory()).events ?? [];
        const rechecks = events.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'prerequisiteState').length;
        runs.push({ runId: wf.runId, events: events.length, rechecks });
      }
      return runs;
    };
    const runs = await eventually(
      async () => {
        const r = await runsOf(dependants[0]!);
        return r.reduce((n, x) => n + x.rechecks, 0) >= c.rechecks ? r : undefined;
      },
      c.timeoutMs,
      2000,
    );
    const total = runs.reduce((n, x) => n + x.rechecks, 0);
    assert.ok(runs.length > 1, `the wait continued as new (${runs.length} runs for ${total} rechecks)`);
    for (const r of runs) assert.ok(r.events <= c.historyLimit + 30, `run ${r.runId} has ${r.events} events; the limit is ${c.historyLimit}`);
    const prerequisiteHistory = (await client.workflow.getHandle(prerequisite).fetchHistory()).events ?? [];
    assert.equal(prerequisiteHistory.filter((e) => e.workflowExecutionSignaledEventAttributes).length, 0, 'no signal reaches the prerequisite per recheck');
    assert.equal((await tasks.getTask(dependants[0]!)).status, 'WAITING');
    // The wait still ends as it should: the prerequisite's end reaches dependants in any run.
    await tasks.cancelTask(prerequisite);
    for (const id of dependants) {
      const t = await eventually(async () => {
        const info = await tasks!.getTask(id);
        return info.status === 'FAILED' ? info : undefined;
      }, 30_000);
      assert.equal(t.error, `prerequisite task ${prerequisite} is CANCELLED: cancelled`);
    }
  } finally {
    await tasks?.close();
    await worker?.stop();
    await db?.drop();
  }
}
