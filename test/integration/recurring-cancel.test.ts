/**
 * A fast loop, watched and cancelled at random moments: while a run works, while it tells its
 * dependants, while it continues as new, or while the next run is being admitted. Every loop ends
 * CANCELLED, and every query on it (a replay of its history) answers. A query that lands while a
 * run's local activity is out used to make its replay differ from the run (non-determinism: the
 * first look at the schedule read the clock after a local activity).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { TaskClient } from '../../src/client/task-client.ts';
import { seedRegistry, type SeedSummary } from '../../src/registry/seed.ts';
import { createTestDatabase, eventually, startTestWorker, temporalAddress, uniqueName, type TestDatabase, type TestWorker } from '../helpers.ts';

const LOOPS = Number(process.env.CANCEL_LOOPS ?? 25);

describe('cancelling a watched recurring task at any moment', () => {
  let db: TestDatabase;
  let worker: TestWorker;
  let tasks: TaskClient;
  let seeded: SeedSummary;
  const taskQueue = uniqueName('registry-tasks-cancel');

  before(async () => {
    db = await createTestDatabase();
    seeded = await seedRegistry(db.pool, { records: 20, dataSources: 1, hubs: 1, hubSize: 3, seed: 7 });
    worker = await startTestWorker(db.pool, taskQueue);
    tasks = new TaskClient(new Client({ connection: await Connection.connect({ address: temporalAddress() }) }), taskQueue);
  });
  after(async () => {
    await worker?.stop();
    await tasks?.close();
    await db?.drop();
  });

  it(`${LOOPS} loops, queried every 20 ms and cancelled at random moments, all end CANCELLED`, { timeout: 10 * 60_000 }, async () => {
    const notCancelled: string[] = [];
    for (let i = 0; i < LOOPS; i++) {
      const id = await tasks.addNewTask('INDEX_RECORDS', { registryObjectKeys: [seeded.hubs[0]!.key], recurEvery: '50 milliseconds', logMessage: `loop ${i}` });
      await eventually(async () => ((await tasks.getTask(id)).iteration ?? 0) >= 2, 60_000, 20);
      await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 60)));
      // Through cancelTask: a plain cancel that meets the run's continue-as-new is lost by the server
      // (the next test shows it). cancelTask watches the run it cancelled until it closes: a run that
      // held the request still continued as new now and then, before that.
      await tasks.cancelTask(id);
      const ended = await eventually(async () => ((await tasks.getTask(id)).status === 'CANCELLED' ? true : undefined), 20_000, 20).catch(() => false);
      if (!ended) {
        notCancelled.push(`${id}: ${(await tasks.client.workflow.getHandle(id).describe()).status.name}`);
        await tasks.client.workflow
          .getHandle(id)
          .terminate('not cancelled')
          .catch(() => undefined);
      }
    }
    assert.deepEqual(notCancelled, []);
  });

  it('a cancel that reaches a run after it continued as new is lost; cancelTask asks the next run', async () => {
    const id = await tasks.addNewTask('INDEX_RECORDS', {
      registryObjectKeys: [seeded.hubs[0]!.key],
      recurEvery: '300 milliseconds',
      logMessage: 'late cancel',
    });
    const firstRun = (await tasks.client.workflow.getHandle(id).describe()).runId;
    const first = tasks.client.workflow.getHandle(id, firstRun);
    await eventually(async () => (await first.describe()).status.name === 'CONTINUED_AS_NEW', 60_000, 50);
    // What a cancel racing the loop's continue-as-new meets: the server takes it, and no run hears of it.
    await first.cancel();
    const iteration = (await tasks.getTask(id)).iteration ?? 0;
    await eventually(async () => ((await tasks.getTask(id)).iteration ?? 0) >= iteration + 2, 30_000, 50);
    assert.notEqual((await tasks.getTask(id)).status, 'CANCELLED');

    await tasks.cancelTask(id);
    const ended = await eventually(async () => ((await tasks.getTask(id)).status === 'CANCELLED' ? true : undefined), 20_000, 50);
    assert.equal(ended, true);
  });
});
