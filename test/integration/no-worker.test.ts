/**
 * Adding a task, rescheduling one or deleting a record while no worker polls the task queue: the
 * answer is a worker's job, so without one the call used to wait forever (the HTTP request,
 * `taskmgr add` and `taskmgr delete-record` hung). Now each answers after WORKER_WAIT that the work
 * is queued and no worker has taken it up, naming the task queue; the work runs when a worker
 * comes. Workers that poll but cannot answer are waited for up to a limit, then the same.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { TaskClient } from '../../src/client/task-client.ts';
import { startAdminServer } from '../../src/http/server.ts';
import { seedRegistry } from '../../src/registry/seed.ts';
import { RegistryClient } from '../../src/client/registry.ts';
import {
  createTestDatabase,
  eventually,
  settledTask,
  startTestWorker,
  temporalAddress,
  testClient,
  testConfig,
  uniqueName,
  type TestDatabase,
} from '../helpers.ts';
import { runTaskmgr } from '../taskmgr-process.ts';

describe('adding a task with no worker running', () => {
  let db: TestDatabase;
  let registry: RegistryClient;
  let tasks: TaskClient;
  const taskQueue = uniqueName('registry-no-worker');

  before(async () => {
    db = await createTestDatabase();
    await seedRegistry(db.pool, { records: 100, dataSources: 1, seed: 61 });
    registry = await testClient(taskQueue, undefined, db.pool);
    tasks = new TaskClient(registry.client, taskQueue, { pool: db.pool, workerWaitMs: 1500 });
  });
  after(async () => {
    await registry?.close();
    await db?.drop();
  });

  it('the client, the HTTP API and taskmgr answer within the wait; the tasks wait, then run when a worker comes', { timeout: 120_000 }, async () => {
    const t0 = Date.now();
    const fromClient = await tasks.addTask({ method: 'INDEX_RECORDS', dataSourceKey: 'no-worker-a' });
    assert.equal(fromClient.admissionPending, true);
    assert.ok(Date.now() - t0 < 10_000, `answered in ${Date.now() - t0} ms`);

    const server = await startAdminServer({
      config: testConfig({ HTTP_PORT: '0', ADMIN_PASSWORD: 'no worker admin password', TEMPORAL_TASK_QUEUE: taskQueue }),
      pool: db.pool,
      tasks,
      registry,
      logger: pino({ level: 'silent' }),
    });
    let fromHttp: { taskId: string; admissionPending: boolean; message: string };
    try {
      const res = await fetch(`${server.url}/api/tasks`, {
        method: 'POST',
        headers: {
          authorization: `Basic ${Buffer.from('admin:no worker admin password').toString('base64')}`,
          'content-type': 'application/json',
          'x-requested-with': 'test',
        },
        body: JSON.stringify({ method: 'GENERATE_CACHE', dataSourceKey: 'no-worker-b' }),
      });
      assert.equal(res.status, 202);
      fromHttp = (await res.json()) as typeof fromHttp;
    } finally {
      await server.close();
    }
    assert.equal(fromHttp.admissionPending, true);
    assert.match(fromHttp.message, /^added, but/);
    assert.match(fromHttp.message, new RegExp(`no worker has taken it up yet: is a worker \\(taskmgr worker\\) running on task queue ${taskQueue}\\?`));

    const cli = await runTaskmgr(['add', 'INDEX_RECORDS', '--data-source', 'no-worker-c', '--json'], {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      DATABASE_URL: db.url,
      TEMPORAL_ADDRESS: temporalAddress(),
      TEMPORAL_TASK_QUEUE: taskQueue,
      WORKER_WAIT: '1 second',
      LOG_LEVEL: 'warn',
    });
    assert.equal(cli.code, 0, cli.out);
    assert.match(cli.out, /^taskmgr: added, but no worker has taken it up yet/m);
    const stdout = cli.out
      .split('\n')
      .filter((l) => !l.startsWith('taskmgr:'))
      .join('\n');
    const fromCli = JSON.parse(stdout) as { taskId: string; admissionPending: boolean };
    assert.equal(fromCli.admissionPending, true);

    // A reschedule is a worker's job too: it answers within the wait, naming the queue.
    await assert.rejects(
      tasks.rescheduleTask(fromClient.taskId, '1 second'),
      (err: Error) =>
        err.name === 'QueuedForWorker' &&
        err.message.startsWith(`the reschedule of task ${fromClient.taskId} was sent, but no worker has taken it up yet`) &&
        err.message.includes(`running on task queue ${taskQueue}? It may still apply when a worker takes it up`),
    );

    const ids = [fromClient.taskId, fromHttp.taskId, fromCli.taskId];
    const waiting = await eventually(
      async () => {
        const { tasks: listed } = await tasks.listTasks({ status: 'WAITING' });
        return ids.every((id) => listed.some((t) => t.taskId === id)) && listed;
      },
      15_000,
      300,
    );
    assert.ok(waiting);

    // A deletion: refused to wait forever from the client, the HTTP API and taskmgr alike.
    const keys = (await db.pool.query<{ key: string }>('SELECT key FROM registry_objects ORDER BY id LIMIT 3')).rows.map((r) => r.key);
    const quick = new RegistryClient(registry.client, { taskQueue, pool: db.pool, workerWaitMs: 1500 });
    await assert.rejects(
      quick.deleteRecord(keys[0]!),
      (err: Error) => err.name === 'QueuedForWorker' && err.message.startsWith(`the deletion of ${keys[0]} is queued, but no worker has taken it up yet`),
    );
    const server2 = await startAdminServer({
      config: testConfig({ HTTP_PORT: '0', ADMIN_PASSWORD: 'no worker admin password', TEMPORAL_TASK_QUEUE: taskQueue }),
      pool: db.pool,
      tasks,
      registry: quick,
      logger: pino({ level: 'silent' }),
    });
    try {
      const res = await fetch(`${server2.url}/api/records/${encodeURIComponent(keys[1]!)}`, {
        method: 'DELETE',
        headers: { authorization: `Basic ${Buffer.from('admin:no worker admin password').toString('base64')}`, 'x-requested-with': 'test' },
      });
      assert.equal(res.status, 202);
      const body = (await res.json()) as { queued: boolean; message: string };
      assert.equal(body.queued, true);
      assert.match(body.message, new RegExp(`running on task queue ${taskQueue}\\?`));
    } finally {
      await server2.close();
    }
    const del = await runTaskmgr(['delete-record', keys[2]!], {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      DATABASE_URL: db.url,
      TEMPORAL_ADDRESS: temporalAddress(),
      TEMPORAL_TASK_QUEUE: taskQueue,
      WORKER_WAIT: '1 second',
      LOG_LEVEL: 'warn',
    });
    assert.equal(del.code, 1);
    assert.match(del.out, /^taskmgr: the deletion of .* is queued, but no worker has taken it up yet/m);

    const worker = await startTestWorker(db.pool, taskQueue);
    try {
      for (const key of keys) await registry.awaitDeletion(key);
      assert.equal((await db.pool.query('SELECT 1 FROM registry_objects WHERE key = ANY($1)', [keys])).rowCount, 0, 'the queued deletions ran');

      // A worker that polls but is slow (the record locked for 5 s) is waited for, not reported missing.
      const slowKey = (await db.pool.query<{ key: string }>('SELECT key FROM registry_objects ORDER BY id LIMIT 1')).rows[0]!.key;
      const locker = await db.pool.connect();
      await locker.query('BEGIN');
      await locker.query('SELECT 1 FROM registry_objects WHERE key = $1 FOR UPDATE', [slowKey]);
      const unlock = setTimeout(() => void locker.query('COMMIT').finally(() => locker.release()), 5000);
      try {
        const t1 = Date.now();
        const outcome = await quick.deleteRecord(slowKey);
        assert.equal(outcome.deleted, true);
        assert.ok(Date.now() - t1 >= 4000, 'it waited for the lock');
      } finally {
        clearTimeout(unlock);
      }
      // Workers that poll but cannot answer (the record locked until the call has answered) are
      // waited for up to the answer limit, not for ever: then the caller hears the work goes on.
      const lockedKey = (await db.pool.query<{ key: string }>('SELECT key FROM registry_objects ORDER BY id LIMIT 1')).rows[0]!.key;
      const limited = new RegistryClient(registry.client, { taskQueue, pool: db.pool, workerWaitMs: 1000, answerLimitMs: 3000 });
      const holder = await db.pool.connect();
      await holder.query('BEGIN');
      await holder.query('SELECT 1 FROM registry_objects WHERE key = $1 FOR UPDATE', [lockedKey]);
      try {
        await assert.rejects(
          limited.deleteRecord(lockedKey),
          (err: Error) =>
            err.name === 'QueuedForWorker' &&
            err.message.startsWith(`the deletion of ${lockedKey} is queued, but the workers on task queue ${taskQueue} have not answered within 3 s`) &&
            err.message.endsWith('It goes on when they can.'),
        );
      } finally {
        await holder.query('COMMIT');
        holder.release();
      }
      await registry.awaitDeletion(lockedKey); // it went on, and ended once the lock went
      assert.equal((await db.pool.query('SELECT 1 FROM registry_objects WHERE key = $1', [lockedKey])).rowCount, 0);

      // Each runs: its module's own outcome (a data source that does not exist may fail it) does not matter here.
      for (const id of ids) assert.match((await settledTask(tasks, id, 60_000)).status, /^(COMPLETED|FAILED)$/, id);
    } finally {
      await worker.stop();
    }
  });
});
