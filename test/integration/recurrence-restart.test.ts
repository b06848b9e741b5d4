/** A recurring task outlives the worker that ran it: stop the worker, start a new one, the loop goes on. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { TaskClient } from '../../src/client/task-client.ts';
import { seedRegistry, type SeedSummary } from '../../src/registry/seed.ts';
import { createTestDatabase, eventually, startTestWorker, temporalAddress, uniqueName, type TestDatabase } from '../helpers.ts';

describe('recurrence across worker restarts', () => {
  let db: TestDatabase;
  let tasks: TaskClient;
  let seeded: SeedSummary;
  const taskQueue = uniqueName('registry-tasks-restart');

  before(async () => {
    db = await createTestDatabase();
    seeded = await seedRegistry(db.pool, { records: 200, dataSources: 1, hubs: 1, hubSize: 20, seed: 21 });
    tasks = new TaskClient(new Client({ connection: await Connection.connect({ address: temporalAddress() }) }), taskQueue);
  });
  after(async () => {
    await tasks?.close();
    await db?.drop();
  });

  it('keeps running after its worker is stopped and another one starts', async () => {
    const first = await startTestWorker(db.pool, taskQueue);
    const id = await tasks.addNewTask('INDEX_RECORDS', { registryObjectKeys: [seeded.hubs[0]!.key], recurEvery: '300 milliseconds' });
    const iterationOf = async () => (await tasks.getTask(id)).iteration ?? 0;
    await eventually(async () => (await iterationOf()) >= 2, 30_000);
    await first.stop();
    // No worker: the timer fires on the server and the next run waits for a worker.
    await new Promise((r) => setTimeout(r, 1500));
    const second = await startTestWorker(db.pool, taskQueue);
    try {
      // An activity task handed to the stopped worker's last poll is retried after its timeout (15 s).
      const before = await iterationOf();
      await eventually(async () => (await iterationOf()) >= before + 2, 60_000);
      const info = await tasks.getTask(id);
      assert.ok(info.recentRuns!.every((r) => r.status === 'COMPLETED'));
      await tasks.cancelTask(id);
      await eventually(async () => (await tasks.getTask(id)).status === 'CANCELLED');
    } finally {
      await second.stop();
    }
  });
});
