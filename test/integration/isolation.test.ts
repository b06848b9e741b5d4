/**
 * Follow-ups never wait behind tasks: task modules run on their own task queue with their own
 * slots, so a worker whose task slots (and more) are held by long tasks still runs a deletion's
 * follow-up at once.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import type { RegistryClient } from '../../src/client/registry.ts';
import { TaskClient } from '../../src/client/task-client.ts';
import { seedRegistry, type SeedSummary } from '../../src/registry/seed.ts';
import {
  createTestDatabase,
  eventually,
  startTestWorker,
  tasksWithFixtures,
  temporalAddress,
  testClient,
  uniqueName,
  type TestDatabase,
  type TestWorker,
} from '../helpers.ts';

const TASK_SLOTS = 4;
/** More long tasks than the worker has activity slots of any kind (8 for follow-ups, 4 for tasks). */
const LONG_TASKS = 14;

describe('isolation of follow-ups from tasks', () => {
  let db: TestDatabase;
  let worker: TestWorker;
  let registry: RegistryClient;
  let tasks: TaskClient;
  let seeded: SeedSummary;

  before(async () => {
    db = await createTestDatabase();
    seeded = await seedRegistry(db.pool, { records: 300, dataSources: 1, hubs: 1, hubSize: 40, seed: 31 });
    worker = await startTestWorker(db.pool, uniqueName('registry-tasks-iso'), { TASK_RUN_SLOTS: String(TASK_SLOTS) }, await tasksWithFixtures());
    registry = await testClient(worker.taskQueue, { batchSize: 10, coalesce: { quietMs: 100, maxWaitMs: 1000 } });
    tasks = new TaskClient(new Client({ connection: await Connection.connect({ address: temporalAddress() }) }), worker.taskQueue, { pool: db.pool });
  });
  after(async () => {
    await tasks?.close();
    await registry?.close();
    await worker?.stop();
    await db?.drop();
  });

  it(`with ${LONG_TASKS} long tasks holding every task slot, a deletion's follow-up still completes at once`, { timeout: 120_000 }, async () => {
    // Started as the temporal CLI would: HOLD is a test fixture, unknown to the client's task list.
    const held = Array.from({ length: LONG_TASKS }, (_, i) => `task:HOLD:hold-${i}:${uniqueName('t')}`);
    await Promise.all(
      held.map((workflowId, i) =>
        tasks.client.workflow.start('registryTask', { taskQueue: worker.taskQueue, workflowId, args: [{ method: 'HOLD', dataSourceKey: `hold-${i}` }] }),
      ),
    );
    // The task slots are full: exactly TASK_SLOTS of them are running their module.
    await eventually(async () => {
      const running = await Promise.all(
        held.map(async (id) =>
          ((await tasks.client.workflow.getHandle(id).describe()).raw.pendingActivities ?? []).some((a) => Number(a.state) === 2 /* STARTED */),
        ),
      );
      return running.filter(Boolean).length === TASK_SLOTS;
    }, 30_000);
    const hub = seeded.hubs[0]!.key;
    const started = Date.now();
    await registry.deleteRecord(hub);
    const result = await registry.awaitDeletion(hub);
    const tookMs = Date.now() - started;
    assert.ok(result.affected > 0);
    assert.ok(tookMs < 30_000, `the follow-up took ${tookMs} ms while the tasks held their slots for a minute`);
    await Promise.all(held.map((id) => tasks.cancelTask(id)));
  });
});
