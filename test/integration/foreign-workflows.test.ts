/**
 * A namespace holds other applications' workflows and other registries' tasks: this manager
 * neither shows them (their input may be secret) nor lets a task wait for or signal one.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { TaskClient, TaskNotFoundError } from '../../src/client/task-client.ts';
import { TaskInputError } from '../../src/taskmgr/input.ts';
import { createTestDatabase, settledTask, startTestWorker, temporalAddress, uniqueName, type TestDatabase, type TestWorker } from '../helpers.ts';

describe("other applications' workflows in the namespace", () => {
  let db: TestDatabase;
  let worker: TestWorker;
  let tasks: TaskClient;
  let client: Client;
  const foreignId = uniqueName('payroll-run');
  const otherRegistryTask = uniqueName('task:other-registry');

  before(async () => {
    db = await createTestDatabase();
    worker = await startTestWorker(db.pool);
    client = new Client({ connection: await Connection.connect({ address: temporalAddress() }) });
    tasks = new TaskClient(client, worker.taskQueue, { pool: db.pool });
    // Nobody polls these queues: the executions just sit there, as another app's would.
    await client.workflow.start('payrollRun', { taskQueue: uniqueName('payroll'), workflowId: foreignId, args: [{ secret: 'salary table' }] });
    await client.workflow.start('registryTask', {
      taskQueue: uniqueName('other-registry'),
      workflowId: otherRegistryTask,
      args: [{ method: 'INDEX_RECORDS', dataSourceKey: 'theirs' }],
    });
  });
  after(async () => {
    for (const id of [foreignId, otherRegistryTask])
      await client.workflow
        .getHandle(id)
        .terminate('test over')
        .catch(() => undefined);
    await worker?.stop();
    await tasks?.close();
    await db?.drop();
  });

  it('getTask does not show them: TaskNotFoundError, and their input never leaves the server', async () => {
    for (const id of [foreignId, otherRegistryTask]) {
      await assert.rejects(tasks.getTask(id), (err: Error) => err instanceof TaskNotFoundError && !err.message.includes('salary'));
    }
  });

  it('a task may not wait for one: refused at add time, and a raw start FAILS naming it; the foreign workflow gets no signal', async () => {
    await assert.rejects(
      tasks.addNewTask('GENERATE_CACHE', { prerequisiteTaskId: foreignId }),
      (err: Error) => err instanceof TaskInputError && /prerequisite task .* does not exist/.test(err.message),
    );
    const raw = uniqueName('task:raw');
    await client.workflow.start('registryTask', {
      taskQueue: worker.taskQueue,
      workflowId: raw,
      args: [{ method: 'GENERATE_CACHE', prerequisiteTaskId: otherRegistryTask }],
    });
    const ended = await settledTask(tasks, raw);
    assert.equal(ended.status, 'FAILED');
    assert.match(ended.error!, new RegExp(`prerequisite task ${otherRegistryTask} does not exist`));
    for (const id of [foreignId, otherRegistryTask]) {
      const events = (await client.workflow.getHandle(id).fetchHistory()).events ?? [];
      assert.equal(events.filter((e) => e.workflowExecutionSignaledEventAttributes).length, 0, `${id} was not signalled`);
    }
  });
});
