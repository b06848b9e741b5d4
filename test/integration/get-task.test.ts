/**
 * What reading a task costs the server: one query, answered by the task itself (with its queue,
 * so another manager's task or another workflow is not shown), plus a describe only for a STARTED
 * task's progress. A loop between two runs reads WAITING with how its last run ended.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { InterceptingCall, type Interceptor } from '@grpc/grpc-js';
import { Client, Connection } from '@temporalio/client';
import { TaskClient, TaskNotFoundError } from '../../src/client/task-client.ts';
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

describe('reading a task', () => {
  let db: TestDatabase;
  let worker: TestWorker;
  let tasks: TaskClient;
  let seeded: SeedSummary;
  const calls: string[] = [];
  /** Counts the gRPC calls this client makes to the server, by method name. */
  const counting: Interceptor = (options, nextCall) =>
    new InterceptingCall(nextCall(options), {
      start(metadata, listener, next) {
        calls.push(options.method_definition.path.split('/').pop()!);
        next(metadata, listener);
      },
    });
  const callsOf = async <T>(read: () => Promise<T>): Promise<{ value: T; made: string[] }> => {
    calls.length = 0;
    const value = await read();
    return { value, made: [...calls] };
  };

  before(async () => {
    db = await createTestDatabase();
    seeded = await seedRegistry(db.pool, { records: 20, dataSources: 1, hubs: 1, hubSize: 3, seed: 11 });
    worker = await startTestWorker(db.pool, uniqueName('registry-tasks-read'), {}, await tasksWithFixtures());
    const connection = await Connection.connect({ address: temporalAddress(), interceptors: [counting] });
    tasks = new TaskClient(new Client({ connection }), worker.taskQueue, { pool: db.pool });
  });
  after(async () => {
    await tasks?.close();
    await worker?.stop();
    await db?.drop();
  });

  it('a WAITING, a COMPLETED and a between-runs task each take one query', { timeout: 60_000 }, async () => {
    const waiting = await tasks.addNewTask('INDEX_RECORDS', { registryObjectKeys: [seeded.hubs[0]!.key], scheduledFor: '1 hour' });
    const read = await callsOf(() => tasks.getTask(waiting));
    assert.equal(read.value.status, 'WAITING');
    assert.deepEqual(read.made, ['QueryWorkflow']);

    const done = await tasks.addNewTask('INDEX_RECORDS', { registryObjectKeys: [seeded.hubs[0]!.key], logMessage: 'once' });
    await settledTask(tasks, done);
    const finished = await callsOf(() => tasks.getTask(done));
    assert.equal(finished.value.status, 'COMPLETED');
    assert.deepEqual(finished.made, ['QueryWorkflow']);

    const loop = await tasks.addNewTask('INDEX_RECORDS', { registryObjectKeys: [seeded.hubs[0]!.key], recurEvery: '1 hour' });
    await eventually(async () => ((await tasks.getTask(loop)).iteration ?? 0) >= 1, 30_000);
    const between = await callsOf(() => tasks.getTask(loop));
    assert.equal(between.value.status, 'WAITING', 'a loop between two runs waits for its next run');
    assert.equal(between.value.recentRuns?.[0]?.status, 'COMPLETED');
    assert.deepEqual(between.made, ['QueryWorkflow']);
    await Promise.all([tasks.cancelTask(waiting), tasks.cancelTask(loop)]);
  });

  it('a STARTED task is described too, for the progress its run reports', { timeout: 60_000 }, async () => {
    const workflowId = `task:HOLD:${uniqueName('read')}`;
    await tasks.client.workflow.start('registryTask', { taskQueue: worker.taskQueue, workflowId, args: [{ method: 'HOLD' }] });
    await eventually(async () => (await tasks.getTask(workflowId)).status === 'STARTED', 30_000);
    const read = await callsOf(() => tasks.getTask(workflowId));
    assert.deepEqual(read.made.sort(), ['DescribeWorkflowExecution', 'QueryWorkflow']);
    await tasks.cancelTask(workflowId);
    assert.equal((await settledTask(tasks, workflowId)).status, 'CANCELLED');
  });

  it('a task whose worker has stopped is shown as the server recorded it, once the query deadline passes', { timeout: 60_000 }, async () => {
    const queue = uniqueName('registry-tasks-stopped');
    const gone = await startTestWorker(db.pool, queue);
    const orphaned = new TaskClient(tasks.client, queue, { pool: db.pool });
    let taskId: string;
    try {
      taskId = await orphaned.addNewTask('INDEX_RECORDS', { registryObjectKeys: [seeded.hubs[0]!.key], scheduledFor: '1 hour' });
      await eventually(async () => (await orphaned.getTask(taskId)).waitingFor?.includes('schedule'), 30_000);
    } finally {
      await gone.stop();
    }
    // The query waits for a worker that polled a moment ago; it is cut off and the server's record answers.
    const read = await orphaned.getTask(taskId);
    assert.equal(read.status, 'WAITING');
    assert.equal(read.method, 'INDEX_RECORDS');
    assert.deepEqual(read.input.registryObjectKeys, [seeded.hubs[0]!.key]);
    await tasks.client.workflow.getHandle(taskId).terminate('test over');
  });

  it("another manager's task and another workflow with a task's id are not shown", { timeout: 60_000 }, async () => {
    const otherQueue = uniqueName('registry-tasks-other');
    const other = await startTestWorker(db.pool, otherQueue);
    try {
      const theirs = `task:INDEX_RECORDS:${uniqueName('theirs')}`;
      await tasks.client.workflow.start('registryTask', {
        taskQueue: otherQueue,
        workflowId: theirs,
        args: [{ method: 'INDEX_RECORDS', scheduledFor: '1 hour' }],
      });
      await assert.rejects(tasks.getTask(theirs), TaskNotFoundError);
      // A workflow of another type, on a queue no worker polls: the query cannot be answered.
      const foreign = `task:INDEX_RECORDS:${uniqueName('foreign')}`;
      await tasks.client.workflow.start('somethingElse', { taskQueue: uniqueName('nobody'), workflowId: foreign, args: [] });
      await assert.rejects(tasks.getTask(foreign), TaskNotFoundError);
      await tasks.client.workflow.getHandle(theirs).cancel();
      await tasks.client.workflow.getHandle(foreign).terminate('test over');
    } finally {
      await other.stop();
    }
  });
});
