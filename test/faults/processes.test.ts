/**
 * Processes dying under the task manager, for real:
 * - a task that kills its worker process (the original's defect 3: the worker died and the task
 *   stayed STARTED forever) is retried on another worker, or ends FAILED with a reason;
 * - the Temporal server is killed and restarted on its data file: a recurring loop and a
 *   scheduled task carry on.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { RegistryClient } from '../../src/client/registry.ts';
import { TaskClient } from '../../src/client/task-client.ts';
import { freePort, startDevServer, type DevServer } from '../../src/dev/temporal-dev-server.ts';
import { seedRegistry, type SeedSummary } from '../../src/registry/seed.ts';
import { createRegistryWorker } from '../../src/worker.ts';
import { spawnWorker } from './spawn-worker.ts';
import { startTaskmgrWorker, testWorkerEnv, type TaskmgrProcess } from '../taskmgr-process.ts';
import { pollerIdentities } from '../../src/client/worker-wait.ts';
import { taskRunQueue } from '../../src/shared.ts';
import {
  assertDerivedStateIsCurrent,
  createTestDatabase,
  eventually,
  settledTask,
  temporalAddress,
  testConfig,
  uniqueName,
  workflowBundle,
  type TestDatabase,
} from '../helpers.ts';

describe('a task that kills its worker process', () => {
  let db: TestDatabase;
  let client: Client;
  let tasks: TaskClient;
  const taskQueue = uniqueName('registry-tasks-kill');
  const workers: ChildProcess[] = [];
  const env = () => ({ TEST_TEMPORAL_ADDRESS: temporalAddress(), DATABASE_URL: db.url, TEMPORAL_TASK_QUEUE: taskQueue });
  const settled = (id: string, timeoutMs = 60_000) =>
    eventually(
      async () => {
        const t = await tasks.getTask(id);
        return ['COMPLETED', 'FAILED', 'CANCELLED'].includes(t.status) ? t : undefined;
      },
      timeoutMs,
      500,
    );
  // As `temporal workflow start` would: the client refuses methods it has no module for.
  const startRaw = (id: string, method: string) => client.workflow.start('registryTask', { taskQueue, workflowId: id, args: [{ method }] });

  before(async () => {
    db = await createTestDatabase();
    client = new Client({ connection: await Connection.connect({ address: temporalAddress() }) });
    tasks = new TaskClient(client, taskQueue);
  });
  after(async () => {
    for (const w of workers) w.kill('SIGKILL');
    await client?.connection.close();
    await db?.drop();
  });

  it('is retried on another worker and completes; the dead attempt does not leave it STARTED', { timeout: 180_000 }, async () => {
    const first = await spawnWorker(env());
    workers.push(first.child);
    const id = uniqueName('task:KILL_WORKER_ONCE');
    await startRaw(id, 'KILL_WORKER_ONCE');
    assert.equal(await first.exited, 'SIGKILL', 'the task killed its worker');
    assert.equal((await tasks.getTask(id)).status, 'STARTED');
    const second = await spawnWorker(env());
    workers.push(second.child);
    const t = await settled(id);
    assert.equal(t.status, 'COMPLETED', t.error);
    assert.deepEqual(t.output, { attempt: 2 });
    assert.equal(t.attempts, 2);
    assert.deepEqual(
      t.logs.map((l) => l.message),
      ['attempt 2: done'],
      'the log shows the run once',
    );
    second.child.kill('SIGTERM');
    await second.exited;
  });

  it('ends FAILED with a reason when it kills every worker it runs on, and the next worker stays healthy', { timeout: 240_000 }, async () => {
    const id = uniqueName('task:KILL_WORKER');
    await startRaw(id, 'KILL_WORKER');
    for (let attempt = 1; attempt <= 2; attempt++) {
      const w = await spawnWorker(env());
      workers.push(w.child);
      assert.equal(await w.exited, 'SIGKILL', `attempt ${attempt} killed its worker`);
    }
    const healthy = await spawnWorker(env());
    workers.push(healthy.child);
    const t = await settled(id);
    assert.equal(t.status, 'FAILED');
    assert.equal(t.error, 'the worker running the task stopped responding for 5 s (it crashed, was killed or is blocked) on each of 2 attempts');
    // The worker that is left runs other tasks.
    const seeded = await seedRegistry(db.pool, { records: 30, dataSources: 1, hubs: 1, hubSize: 5, seed: 2 });
    const ok = await settled(await tasks.addNewTask('INDEX_RECORDS', { dataSourceKey: seeded.dataSources[0] }));
    assert.equal(ok.status, 'COMPLETED', ok.error);
    assert.equal(healthy.child.exitCode, null);
  });
});

// docker-compose.yml gives a stopping worker 60 s (stop_grace_period) before it kills it: the worker
// must end itself first, even when a task cannot heed its cancel, and the task must not be lost.
describe('a worker stopped while its task is stuck in PostgreSQL', () => {
  let db: TestDatabase;
  let tasks: TaskClient;
  const taskQueue = uniqueName('registry-tasks-stop');
  const running: TaskmgrProcess[] = [];

  before(async () => {
    db = await createTestDatabase();
    await seedRegistry(db.pool, { records: 40, dataSources: 1, hubs: 1, hubSize: 5, seed: 5 });
    tasks = new TaskClient(new Client({ connection: await Connection.connect({ address: temporalAddress() }) }), taskQueue, { pool: db.pool });
  });
  after(async () => {
    for (const w of running) w.child.kill('SIGKILL');
    await tasks?.close();
    await db?.drop();
  });

  /** `taskmgr worker`, as an operator runs it, once it polls the queue. */
  const worker = async () => {
    const w = startTaskmgrWorker(testWorkerEnv(db.url, temporalAddress(), taskQueue));
    running.push(w);
    await eventually(async () => (await pollerIdentities(tasks.client, taskRunQueue(taskQueue), 'activity')).length >= running.length, 120_000, 250);
    return w;
  };

  it(
    'the worker ends itself within 50 s (the task waits on a row lock, deaf to its cancel); the task is retried on another worker and completes',
    { timeout: 300_000 },
    async (ctx) => {
      const { id, key } = (await db.pool.query<{ id: string; key: string }>('SELECT id, key FROM registry_objects ORDER BY id LIMIT 1')).rows[0]!;
      const locker = await db.pool.connect();
      try {
        await locker.query('BEGIN');
        await locker.query('SELECT 1 FROM registry_objects WHERE id = $1 FOR UPDATE', [id]);
        const first = await worker();
        const taskId = await tasks.addNewTask('INDEX_RECORDS', { registryObjectKeys: [key] });
        // The task's query waits for the lock: a cancel reaches the task, not PostgreSQL's wait.
        await eventually(
          async () => (await db.pool.query("SELECT 1 FROM pg_locks WHERE NOT granted AND locktype IN ('tuple', 'transactionid')")).rowCount! > 0,
          60_000,
          250,
        );
        const stuck = await db.pool.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()");
        assert.ok(stuck.rowCount! > 0, 'the task waits on the lock');
        const stopped = Date.now();
        first.child.kill('SIGTERM');
        const { code, output } = await first.exited;
        const stoppingSeconds = (Date.now() - stopped) / 1000;
        ctx.diagnostic(`taskmgr worker exited ${stoppingSeconds} s after SIGTERM, code ${code}: ${output.trim().split('\n').slice(-2).join(' / ')}`);
        assert.ok(stoppingSeconds >= 45 && stoppingSeconds < 58, `the worker waited for the task, then ended itself: ${stoppingSeconds} s\n${output}`);
        assert.equal(code, 1, 'a stop that had to be forced is not a clean exit');
        assert.match(output, /the worker stopped 5\d s after it was asked to, with work still running that did not heed its cancel/);
        assert.equal((await tasks.getTask(taskId)).status, 'STARTED', 'the abandoned attempt leaves the task to its heartbeat timeout');
        // Its query, still waiting for the lock when the process ended, is ended by PostgreSQL (the
        // pool's client_connection_check_interval), not left holding what it had locked before.
        const gone = Date.now();
        await eventually(
          async () => (await db.pool.query('SELECT 1 FROM pg_stat_activity WHERE pid = ANY($1::int[])', [stuck.rows.map((r) => r.pid)])).rowCount === 0,
          15_000,
          250,
        );
        ctx.diagnostic(`its query waiting on the lock ended ${(Date.now() - gone) / 1000} s after the process`);
        await locker.query('ROLLBACK');
        await worker();
        const t = await settledTask(tasks, taskId, 120_000);
        assert.equal(t.status, 'COMPLETED', t.error);
        assert.equal(t.attempts, 2);
      } finally {
        await locker.query('ROLLBACK').catch(() => undefined);
        locker.release();
      }
    },
  );
});

describe('task modules that throw or hang', () => {
  let db: TestDatabase;
  let client: Client;
  let tasks: TaskClient;
  let worker: ChildProcess | undefined;
  const taskQueue = uniqueName('registry-tasks-hang');

  before(async () => {
    db = await createTestDatabase();
    client = new Client({ connection: await Connection.connect({ address: temporalAddress() }) });
    tasks = new TaskClient(client, taskQueue);
    worker = (await spawnWorker({ TEST_TEMPORAL_ADDRESS: temporalAddress(), DATABASE_URL: db.url, TEMPORAL_TASK_QUEUE: taskQueue })).child;
  });
  after(async () => {
    worker?.kill('SIGKILL');
    await client?.connection.close();
    await db?.drop();
  });

  it(
    'a task that hangs is failed by its timeout, after its attempts, with a message saying so; one that throws fails at once',
    { timeout: 120_000 },
    async () => {
      const hang = uniqueName('task:HANG');
      const thrower = uniqueName('task:THROW_ERROR');
      await client.workflow.start('registryTask', { taskQueue, workflowId: hang, args: [{ method: 'HANG' }] });
      await client.workflow.start('registryTask', { taskQueue, workflowId: thrower, args: [{ method: 'THROW_ERROR' }] });
      const settled = (id: string) =>
        eventually(
          async () => {
            const t = await tasks.getTask(id);
            return ['COMPLETED', 'FAILED', 'CANCELLED'].includes(t.status) ? t : undefined;
          },
          60_000,
          500,
        );
      const thrown = await settled(thrower);
      assert.equal(thrown.status, 'FAILED');
      assert.equal(thrown.error, 'the harvest endpoint answered 503');
      assert.equal(thrown.attempts, 1);
      const hung = await settled(hang);
      assert.equal(hung.status, 'FAILED');
      assert.equal(hung.error, 'the task ran longer than its timeout of 3 s on each of 2 attempts');
      assert.equal(worker!.exitCode, null, 'the worker is still running');
    },
  );
});

describe('the Temporal server killed and restarted on its data file', () => {
  let db: TestDatabase;
  let dir: string;
  let server: DevServer;
  let seeded: SeedSummary;

  before(async () => {
    db = await createTestDatabase();
    seeded = await seedRegistry(db.pool, { records: 100, dataSources: 1, hubs: 1, hubSize: 10, seed: 4 });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'registry-taskmgr-restart-'));
  });
  after(async () => {
    await server?.stop();
    await db?.drop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a recurring loop, a scheduled task and a burst of deletions carry on after the restart', { timeout: 240_000 }, async () => {
    const port = await freePort();
    const start = () =>
      startDevServer({
        cliPath: process.env.TEMPORAL_CLI!,
        port,
        dbFile: path.join(dir, 'temporal.db'),
        dynamicConfig: { 'history.workflowIdReuseMinimalInterval': '0s', 'history.timerProcessorMaxTimeShift': '10ms' },
      });
    server = await start();
    const taskQueue = uniqueName('registry-tasks-restart');
    const config = testConfig({ TEMPORAL_ADDRESS: server.address, TEMPORAL_TASK_QUEUE: taskQueue });
    const connection = await NativeConnection.connect({ address: server.address });
    const client = new Client({ connection: await Connection.connect({ address: server.address }) });
    const worker = await createRegistryWorker({
      config,
      pool: db.pool,
      connection,
      client,
      namespace: 'default',
      taskQueue,
      workflowBundle: await workflowBundle(),
    });
    const running = worker.run();
    const tasks = new TaskClient(client, taskQueue);
    // A long quiet period, so that the deletions' follow-up is still waiting in the coalescer when the server dies.
    const registry = new RegistryClient(client, { taskQueue, followUp: { batchSize: 20, concurrency: 2, coalesce: { quietMs: 4000, maxWaitMs: 8000 } } });
    try {
      const loop = await tasks.addNewTask('INDEX_RECORDS', { registryObjectKeys: [seeded.hubs[0]!.key], recurEvery: '500 milliseconds' });
      const scheduled = await tasks.addNewTask('GENERATE_CACHE', { dataSourceKey: seeded.dataSources[0], scheduledFor: '8 seconds' });
      const doomed = (await db.pool.query<{ key: string }>("SELECT key FROM registry_objects WHERE key NOT LIKE '%/hub-%' ORDER BY key LIMIT 6")).rows.map(
        (r) => r.key,
      );
      await Promise.all(doomed.map((k) => registry.deleteRecord(k)));
      await eventually(async () => ((await tasks.getTask(loop)).iteration ?? 0) >= 2, 30_000);

      server.process.kill('SIGKILL');
      await new Promise((r) => server.process.once('exit', r));
      await new Promise((r) => setTimeout(r, 3000));
      server = await start();

      // The worker and client reconnect by themselves.
      const before = await eventually(
        () =>
          tasks.getTask(loop).then(
            (t) => t.iteration ?? 0,
            () => undefined,
          ),
        60_000,
        500,
      );
      await eventually(async () => ((await tasks.getTask(loop)).iteration ?? 0) >= before + 3, 90_000, 500);
      const done = await eventually(
        async () => {
          const t = await tasks.getTask(scheduled);
          return t.status === 'COMPLETED' ? t : undefined;
        },
        90_000,
        500,
      );
      assert.ok(Date.parse(done.startedAt!) >= Date.parse(done.scheduledFor!), 'it still waited for its time');
      assert.ok((await tasks.getTask(loop)).recentRuns!.every((r) => r.status === 'COMPLETED'));
      const deleted = await Promise.all(doomed.map((k) => registry.awaitDeletion(k)));
      assert.equal(deleted.length, 6);
      assert.equal(
        (await db.pool.query('SELECT count(*)::int AS n FROM registry_operations WHERE completed_at IS NULL')).rows[0].n,
        0,
        'every follow-up completed',
      );
      await assertDerivedStateIsCurrent(db.pool);
      await tasks.cancelTask(loop);
      await eventually(async () => (await tasks.getTask(loop)).status === 'CANCELLED', 30_000);
    } finally {
      worker.shutdown();
      await running;
      await client.connection.close();
      await connection.close();
    }
  });
});
