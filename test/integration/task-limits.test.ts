/**
 * Tasks at the sizes the API accepts, on a server with its default search attribute and payload
 * limits (the test server lifts neither): the largest accepted task runs, one more key is refused
 * clearly from every door, and a task is found by any of its keys.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { TaskClient, TaskInputError } from '../../src/client/task-client.ts';
import { seedRegistry, type SeedSummary } from '../../src/registry/seed.ts';
import { MAX_KEY_LENGTH, RegistryObjectKeysKey, SEARCH_ATTRIBUTE_VALUE_BUDGET, utf8Length } from '../../src/shared.ts';
import { TASK_LIMITS } from '../../src/taskmgr/input.ts';
import { createTestDatabase, eventually, startTestWorker, temporalAddress, type TestDatabase, type TestWorker, settledTask } from '../helpers.ts';

/** A key of exactly `length` characters, unique by `i`. */
const longKey = (i: number, length: number) => {
  const head = `edge/collection/${i}/`;
  return head + 'x'.repeat(length - head.length);
};

describe('task sizes at the limits', () => {
  let db: TestDatabase;
  let worker: TestWorker;
  let tasks: TaskClient;
  let withoutDatabase: TaskClient;
  let seeded: SeedSummary;

  before(async () => {
    db = await createTestDatabase();
    seeded = await seedRegistry(db.pool, { records: 200, dataSources: 2, hubs: 1, hubSize: 20, seed: 11 });
    worker = await startTestWorker(db.pool);
    const client = new Client({ connection: await Connection.connect({ address: temporalAddress() }), namespace: 'default' });
    tasks = new TaskClient(client, worker.taskQueue, { pool: db.pool });
    withoutDatabase = new TaskClient(client, worker.taskQueue);
  });
  after(async () => {
    await tasks?.close();
    await worker?.stop();
    await db?.drop();
  });

  const settled = (id: string) => settledTask(tasks, id, 60_000);

  it(`the largest task (${TASK_LIMITS.maxKeys} keys of ${MAX_KEY_LENGTH} characters) runs, and is found by its last key`, async () => {
    const real = (await db.pool.query<{ key: string }>('SELECT key FROM registry_objects ORDER BY id LIMIT 5')).rows.map((r) => r.key);
    const keys = [...real, ...Array.from({ length: TASK_LIMITS.maxKeys - real.length }, (_, i) => longKey(i, MAX_KEY_LENGTH))];
    const id = await tasks.addNewTask('RUN_QUALITY_CHECK', { dataSourceKey: seeded.dataSources[0], registryObjectKeys: keys });
    const t = await settled(id);
    assert.equal(t.status, 'COMPLETED', t.error);
    assert.equal(t.keyCount, TASK_LIMITS.maxKeys);
    assert.deepEqual(t.output, { records: real.length, changed: 0 }, 'the module was given every key (the 5 real ones among them)');
    const description = await tasks.client.workflow.getHandle(id).describe();
    const inAttribute = description.typedSearchAttributes.get(RegistryObjectKeysKey) ?? [];
    assert.ok(utf8Length(JSON.stringify(inAttribute)) <= SEARCH_ATTRIBUTE_VALUE_BUDGET, 'the search attribute holds what fits in 2 KB');
    const last = keys[keys.length - 1]!;
    assert.ok(!inAttribute.includes(last));
    const found = await eventually(async () => (await tasks.listTasks({ recordKey: last })).tasks.find((x) => x.taskId === id));
    assert.equal(found.keyCount, TASK_LIMITS.maxKeys);
  });

  it('one key more is refused with the limit named, and nothing starts', async () => {
    const keys = Array.from({ length: TASK_LIMITS.maxKeys + 1 }, (_, i) => longKey(i, 40));
    const before = (await tasks.listTasks({ method: 'GENERATE_CACHE' })).tasks.length;
    await assert.rejects(
      tasks.addNewTask('GENERATE_CACHE', { registryObjectKeys: keys }),
      (err: Error) => err instanceof TaskInputError && /10001 keys; at most 10000 are allowed/.test(err.message),
    );
    const tooLong = [longKey(0, MAX_KEY_LENGTH + 1)];
    await assert.rejects(tasks.addNewTask('GENERATE_CACHE', { registryObjectKeys: tooLong }), /513 characters long; at most 512/);
    assert.equal((await tasks.listTasks({ method: 'GENERATE_CACHE' })).tasks.length, before);
    assert.equal((await db.pool.query('SELECT count(*)::int AS n FROM task_keys')).rows[0].n, TASK_LIMITS.maxKeys, 'only the first test task has keys stored');
  });

  it('a client without the database refuses a key set larger than a workflow input carries, naming the limit', async () => {
    const keys = Array.from({ length: 2000 }, (_, i) => longKey(i, 200));
    await assert.rejects(
      withoutDatabase.addNewTask('GENERATE_CACHE', { registryObjectKeys: keys }),
      (err: Error) => err instanceof TaskInputError && /more than 131072 bytes/.test(err.message) && /options\.pool/.test(err.message),
    );
  });

  it('started from the temporal CLI with an input over the payload budget, a task FAILS naming the limit', async () => {
    const keys = Array.from({ length: 3000 }, (_, i) => longKey(i, 400));
    const id = `raw-oversize-${Date.now()}`;
    await tasks.client.workflow.start('registryTask', {
      taskQueue: worker.taskQueue,
      workflowId: id,
      args: [{ method: 'GENERATE_CACHE', registryObjectKeys: keys }],
    });
    const t = await settled(id);
    assert.equal(t.status, 'FAILED');
    assert.match(t.error!, /the task input is \d+ bytes; at most 1048576 travel in a workflow input/);
  });

  it('a task with more keys than a search attribute holds (the maintenance repair case) runs and is found by each key', async () => {
    const keys = Array.from({ length: 300 }, (_, i) => longKey(i, 120));
    const id = await tasks.addNewTask('INDEX_RECORDS', { dataSourceKey: seeded.dataSources[1], registryObjectKeys: keys });
    const t = await settled(id);
    assert.equal(t.status, 'COMPLETED', t.error);
    for (const key of [keys[0]!, keys[150]!, keys[299]!]) {
      const found = await eventually(async () => (await tasks.listTasks({ recordKey: key })).tasks.some((x) => x.taskId === id));
      assert.ok(found, key);
    }
  });
});
