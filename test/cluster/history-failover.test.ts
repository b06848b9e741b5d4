/**
 * A history process dies (SIGKILL) on a cluster of separate processes, during a burst of record
 * deletions and during a recurring loop: the other history process takes its shards and nothing
 * is lost. The cluster here is this test's own (it kills its processes); the worker runs in a
 * process of its own. Runs under `npm run test:cluster`.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { RegistryClient } from '../../src/client/registry.ts';
import { TaskClient } from '../../src/client/task-client.ts';
import { seedRegistry, type SeedSummary } from '../../src/registry/seed.ts';
import { startTestCluster, type TestCluster } from '../cluster-server.ts';
import { spawnWorker } from '../faults/spawn-worker.ts';
import { assertDerivedStateIsCurrent, createTestDatabase, eventually, uniqueName, type TestDatabase } from '../helpers.ts';

describe('a history process dies', () => {
  let cluster: TestCluster;
  let db: TestDatabase;
  let seeded: SeedSummary;
  let registry: RegistryClient;
  let tasks: TaskClient;
  let stopWorker: () => void;
  const taskQueue = uniqueName('registry-failover');

  before(async () => {
    cluster = await startTestCluster(process.env.TEST_DATABASE_URL!);
    db = await createTestDatabase();
    seeded = await seedRegistry(db.pool, { records: 600, dataSources: 4, hubs: 4, hubSize: 40, seed: 11 });
    const worker = await spawnWorker({ TEST_TEMPORAL_ADDRESS: cluster.address, DATABASE_URL: db.url, TEMPORAL_TASK_QUEUE: taskQueue });
    stopWorker = () => worker.child.kill('SIGTERM');
    const client = new Client({ connection: await Connection.connect({ address: cluster.address }) });
    registry = new RegistryClient(client, { taskQueue, pool: db.pool });
    tasks = new TaskClient(client, taskQueue, { pool: db.pool });
  });
  after(async () => {
    stopWorker?.();
    await registry?.close();
    await db?.drop();
    await cluster?.stop();
  });

  it('during a burst of deletions: every deletion and its follow-up completes, the derived state is current', { timeout: 6 * 60_000 }, async () => {
    const keys = (await db.pool.query<{ key: string }>("SELECT key FROM registry_objects WHERE key NOT LIKE '%/hub-%' ORDER BY id LIMIT 40")).rows.map(
      (r) => r.key,
    );
    const hubs = seeded.hubs.map((h) => h.key);
    const burst = [...hubs, ...keys];
    const started = burst.slice(0, 10).map((k) => registry.deleteRecord(k));
    await Promise.all(started);
    cluster.processes.get('history-1')!.child.kill('SIGKILL');
    // The rest arrive while the dead host's shards move to history-2.
    const rest = await Promise.all(burst.slice(10).map((k) => registry.deleteRecord(k)));
    assert.equal(rest.length, burst.length - 10);
    for (const key of burst) await registry.awaitDeletion(key);
    const left = await db.pool.query('SELECT key FROM registry_objects WHERE key = ANY($1)', [burst]);
    assert.deepEqual(left.rows, []);
    const open = await db.pool.query("SELECT op_id FROM registry_operations WHERE kind = 'DELETE_RECORD' AND completed_at IS NULL");
    assert.deepEqual(open.rows, [], 'the follow-up of every deletion finished');
    await assertDerivedStateIsCurrent(db.pool);
    await cluster.restart('history-1');
  });

  it('during a recurring loop: it goes on running, and stops on one cancel', { timeout: 6 * 60_000 }, async () => {
    const id = await tasks.addNewTask('INDEX_RECORDS', { registryObjectKeys: [seeded.hubs[0]!.key], recurEvery: '1 second' });
    await eventually(async () => ((await tasks.getTask(id)).iteration ?? 0) >= 2, 60_000, 500);
    const before = (await tasks.getTask(id)).iteration!;
    cluster.processes.get('history-2')!.child.kill('SIGKILL');
    const goneOn = await eventually(
      async () => {
        const t = await tasks.getTask(id).catch(() => undefined);
        return t && (t.iteration ?? 0) >= before + 3 ? t : undefined;
      },
      180_000,
      1000,
    );
    assert.ok(
      goneOn.recentRuns!.every((r) => r.status === 'COMPLETED'),
      'no run failed while the shards moved',
    );
    await tasks.cancelTask(id);
    await eventually(async () => (await tasks.getTask(id)).status === 'CANCELLED', 60_000, 500);
  });
});
