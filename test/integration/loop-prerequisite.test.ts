/**
 * A recurring task names its prerequisite in every run: retention keeps that prerequisite while
 * the loop lives, also while one of its runs is running (when a one-off dependant has let go),
 * and lets it go once the loop has ended.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { TaskClient, TaskStateError } from '../../src/client/task-client.ts';
import { seedRegistry, type SeedSummary } from '../../src/registry/seed.ts';
import {
  createTestDatabase,
  eventually,
  settledTask,
  startTestWorker,
  tasksWithFixtures,
  temporalAddress,
  uniqueName,
  type TestDatabase,
  type TestWorker,
} from '../helpers.ts';

describe("a loop's prerequisite and retention", () => {
  let db: TestDatabase;
  let worker: TestWorker;
  let tasks: TaskClient;
  let seeded: SeedSummary;

  before(async () => {
    db = await createTestDatabase();
    seeded = await seedRegistry(db.pool, { records: 20, dataSources: 1, hubs: 1, hubSize: 3, seed: 13 });
    worker = await startTestWorker(db.pool, uniqueName('registry-tasks-loop-pre'), {}, await tasksWithFixtures());
    tasks = new TaskClient(new Client({ connection: await Connection.connect({ address: temporalAddress() }) }), worker.taskQueue, { pool: db.pool });
  });
  after(async () => {
    await tasks?.close();
    await worker?.stop();
    await db?.drop();
  });

  const flushed = async (): Promise<string[]> => {
    const ids: string[] = [];
    await tasks.flushTasks({ completedBefore: new Date(Date.now() + 60_000) }, { onDeleted: (id) => ids.push(id) });
    return ids;
  };

  it('is kept while a run of the loop runs, and flushed once the loop is cancelled', { timeout: 90_000 }, async () => {
    const prerequisite = await settledTask(tasks, await tasks.addNewTask('INDEX_RECORDS', { registryObjectKeys: [seeded.hubs[0]!.key] }));
    assert.equal(prerequisite.status, 'COMPLETED');
    await eventually(async () => (await tasks.listTasks({ status: 'COMPLETED' })).tasks.some((x) => x.taskId === prerequisite.taskId));
    // HOLD (a test fixture) runs for a minute: the flush comes while the loop's run is STARTED.
    const loop = `task:HOLD:${uniqueName('loop')}`;
    await tasks.client.workflow.start('registryTask', {
      taskQueue: worker.taskQueue,
      workflowId: loop,
      args: [{ method: 'HOLD', prerequisiteTaskId: prerequisite.taskId, recurEvery: '1 second' }],
    });
    await eventually(async () => (await tasks.getTask(loop)).status === 'STARTED', 30_000);
    assert.ok(!(await flushed()).includes(prerequisite.taskId), 'kept while the loop runs: its next run names it again');

    await tasks.cancelTask(loop);
    assert.equal((await settledTask(tasks, loop)).status, 'CANCELLED');
    assert.ok((await flushed()).includes(prerequisite.taskId), 'flushed once nothing waits for it');
  });

  it('a loop terminated (so it could not say it ended) does not hold its prerequisite for ever', { timeout: 90_000 }, async () => {
    const prerequisite = await settledTask(
      tasks,
      await tasks.addNewTask('INDEX_RECORDS', { registryObjectKeys: [seeded.hubs[0]!.key], logMessage: 'before a terminated loop' }),
    );
    await eventually(async () => (await tasks.listTasks({ status: 'COMPLETED' })).tasks.some((x) => x.taskId === prerequisite.taskId));
    const loop = `task:HOLD:${uniqueName('terminated')}`;
    await tasks.client.workflow.start('registryTask', {
      taskQueue: worker.taskQueue,
      workflowId: loop,
      args: [{ method: 'HOLD', prerequisiteTaskId: prerequisite.taskId, recurEvery: '1 second' }],
    });
    await eventually(async () => (await tasks.getTask(loop)).status === 'STARTED', 30_000);
    assert.ok(!(await flushed()).includes(prerequisite.taskId), 'held while the loop runs');
    await tasks.client.workflow.getHandle(loop).terminate('the operator stopped it');
    assert.ok((await flushed()).includes(prerequisite.taskId), 'the registration of a dependant that has ended goes with the next flush');
  });

  it('a client without the database refuses to flush: it cannot tell which tasks are prerequisites', async () => {
    const blind = new TaskClient(tasks.client, worker.taskQueue);
    await assert.rejects(
      blind.flushTasks({ completedBefore: new Date() }),
      (err: Error) => err instanceof TaskStateError && /needs the task manager's database/.test(err.message),
    );
    await assert.rejects(blind.flushTasks({ failed: true }), TaskStateError);
  });
});
