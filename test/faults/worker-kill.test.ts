/**
 * Workers SIGKILLed at random points of a follow-up over 5,000 related records, several times:
 * a new worker finishes it, the registry ends exactly as after an undisturbed run of the same
 * deletion on an identical registry, and no effect shows twice. Then two and three workers on one
 * task queue: the work spreads over them, there is one coalescer per data source, and concurrent
 * adds of a deduplicated task make one task.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { RegistryClient } from '../../src/client/registry.ts';
import { TaskClient } from '../../src/client/task-client.ts';
import type { Pool } from '../../src/db/pool.ts';
import { seedRegistry } from '../../src/registry/seed.ts';
import { coalescerWorkflowId } from '../../src/client/workflow-ids.ts';
import {
  assertDerivedStateIsCurrent,
  createTestDatabase,
  eventually,
  startTestWorker,
  temporalAddress,
  testClient,
  uniqueName,
  type TestDatabase,
} from '../helpers.ts';
import { spawnWorker } from './spawn-worker.ts';

const SEED = { records: 11_000, dataSources: 2, hubs: 1, hubSize: 6000, seed: 41 };

/** The registry's content without the times at which it was written. */
async function content(pool: Pool) {
  const q = async (sql: string) => (await pool.query(sql)).rows;
  return {
    records: await q('SELECT key, quality_level, quality_report FROM registry_objects ORDER BY key'),
    index: await q('SELECT record_key, quality_level, status, document::text FROM record_index ORDER BY record_key'),
    cache: await q('SELECT record_key, rendering FROM record_cache ORDER BY record_key'),
    counts: (
      await q(`SELECT (SELECT count(*) FROM registry_objects)::int AS records, (SELECT count(*) FROM record_index)::int AS index,
                             (SELECT count(*) FROM record_cache)::int AS cache, (SELECT count(*) FROM followup_items)::int AS followups,
                             (SELECT count(*) FROM registry_operations WHERE completed_at IS NULL)::int AS open_operations`)
    )[0],
  };
}

describe('workers killed during a follow-up over 5,000 related records', () => {
  let reference: TestDatabase;
  let victim: TestDatabase;
  const workers: ChildProcess[] = [];

  before(async () => {
    [reference, victim] = await Promise.all([createTestDatabase(), createTestDatabase()]);
    await Promise.all([seedRegistry(reference.pool, SEED), seedRegistry(victim.pool, SEED)]);
  });
  after(async () => {
    for (const w of workers) w.kill('SIGKILL');
    await reference?.drop();
    await victim?.drop();
  });

  it('end exactly as an undisturbed run, with nothing done twice', { timeout: 600_000 }, async () => {
    const followUp = { batchSize: 100, concurrency: 2, coalesce: { quietMs: 100, maxWaitMs: 1000 } };
    const hub = (await reference.pool.query<{ key: string }>("SELECT key FROM registry_objects WHERE key LIKE '%/hub-%' LIMIT 1")).rows[0]!.key;

    // The undisturbed run.
    const calm = await startTestWorker(reference.pool);
    const calmClient = await testClient(calm.taskQueue, followUp);
    await calmClient.deleteRecord(hub);
    const calmResult = await calmClient.awaitDeletion(hub);
    await calmClient.close();
    await calm.stop();

    // The same deletion, with its worker killed three times at random points.
    const taskQueue = uniqueName('registry-tasks-kill9');
    const env = { TEST_TEMPORAL_ADDRESS: temporalAddress(), DATABASE_URL: victim.url, TEMPORAL_TASK_QUEUE: taskQueue };
    const client = await testClient(taskQueue, followUp);
    const start = await spawnWorker(env);
    workers.push(start.child);
    const outcome = await client.deleteRecord(hub);
    assert.equal(outcome.plannedByRound, true);
    let current = start;
    const kills: { completed: boolean }[] = [];
    const opDone = async () =>
      Boolean((await victim.pool.query('SELECT completed_at FROM registry_operations WHERE op_id = $1', [outcome.opId])).rows[0]?.completed_at);
    for (let k = 0; k < 3; k++) {
      // Somewhere in the middle: after a random share of the batches has been done.
      await new Promise((r) => setTimeout(r, 400 + Math.floor(Math.random() * 1200)));
      kills.push({ completed: await opDone() });
      current.child.kill('SIGKILL');
      await current.exited;
      current = await spawnWorker(env);
      workers.push(current.child);
    }
    assert.equal(kills[0]!.completed, false, 'the first kill came before the follow-up was done');
    const result = await client.awaitDeletion(hub);
    await client.close();

    assert.deepEqual(await content(victim.pool), await content(reference.pool), 'the registry is exactly as after the undisturbed run');
    const counts = (await content(victim.pool)).counts;
    assert.deepEqual([counts.followups, counts.open_operations], [0, 0]);
    // A batch whose attempt committed before its worker died returns its first run's figures when
    // repeated: the totals are those of the undisturbed run, nothing missed, nothing counted twice.
    assert.ok(calmResult.affected >= 5000, `${calmResult.affected} related records`);
    const totals = (r: typeof result) => ({ affected: r.affected, qualityChanges: r.qualityChanges, reindexed: r.reindexed, recached: r.recached });
    assert.deepEqual(totals(result), totals(calmResult), JSON.stringify({ kills }));
    await assertDerivedStateIsCurrent(victim.pool);
  });
});

describe('two and three workers on one task queue', () => {
  let db: TestDatabase;
  const workers: ChildProcess[] = [];
  after(async () => {
    for (const w of workers) w.kill('SIGKILL');
    await db?.drop();
  });

  it('spread the work, run one coalescer per data source, and make one task of concurrent deduplicated adds', { timeout: 300_000 }, async () => {
    db = await createTestDatabase();
    const seeded = await seedRegistry(db.pool, { records: 3000, dataSources: 2, hubs: 2, hubSize: 600, seed: 43 });
    const taskQueue = uniqueName('registry-tasks-multi');
    const env = { TEST_TEMPORAL_ADDRESS: temporalAddress(), DATABASE_URL: db.url, TEMPORAL_TASK_QUEUE: taskQueue };
    // Two workers for the burst; a third joins for the tasks.
    for (let i = 0; i < 2; i++) workers.push((await spawnWorker(env)).child);
    const client: RegistryClient = await testClient(taskQueue, { batchSize: 50, concurrency: 4, coalesce: { quietMs: 200, maxWaitMs: 2000 } });
    const tasks = new TaskClient(client.client, taskQueue);
    try {
      const ds = seeded.dataSources[0]!;
      const keys = (
        await db.pool.query<{ key: string }>(
          'SELECT ro.key FROM registry_objects ro JOIN data_sources d ON d.id = ro.data_source_id WHERE d.key = $1 AND EXISTS (SELECT 1 FROM relations r WHERE r.from_id = ro.id) ORDER BY ro.key LIMIT 60',
          [ds],
        )
      ).rows.map((r) => r.key);
      // Bursts from several clients at once, plus the hub: all handed to the one coalescer of the data source.
      await Promise.all(keys.map((k) => client.deleteRecord(k)));
      await Promise.all(keys.map((k) => client.awaitDeletion(k)));
      const coalescers: string[] = [];
      for await (const wf of client.client.workflow.list({ query: `WorkflowType = 'coalesceFollowUps' AND ExecutionStatus = 'Running'` })) {
        if (wf.workflowId.includes(taskQueue)) coalescers.push(wf.workflowId);
      }
      assert.deepEqual(coalescers, [coalescerWorkflowId(ds, taskQueue)], 'one coalescer for the data source');

      // Which workers ran the rounds' batches: more than one.
      const history = await client.client.workflow.getHandle(coalescerWorkflowId(ds, taskQueue)).fetchHistory();
      const identities = new Set((history.events ?? []).map((e) => e.activityTaskStartedEventAttributes?.identity).filter(Boolean));
      workers.push((await spawnWorker(env)).child);
      const tasksDone = await Promise.all(Array.from({ length: 12 }, (_, i) => tasks.addNewTask('INDEX_RECORDS', { dataSourceKey: `spread-${i}` })));
      const taskIdentities = new Set<string>();
      for (const id of tasksDone) {
        await client.client.workflow
          .getHandle(id)
          .result()
          .catch(() => undefined);
        for (const e of (await client.client.workflow.getHandle(id).fetchHistory()).events ?? []) {
          const who = e.activityTaskStartedEventAttributes?.identity;
          if (who) taskIdentities.add(who);
        }
      }
      assert.ok(
        identities.size + taskIdentities.size > 2 && new Set([...identities, ...taskIdentities]).size >= 2,
        `activities ran on ${[...identities, ...taskIdentities].join(', ')}`,
      );

      // Concurrent adds of the same method and data source while one WAITS: one task, whichever of the three workers admits them.
      const ids = await Promise.all(
        Array.from({ length: 12 }, () => tasks.addNewTask('GENERATE_CACHE', { dataSourceKey: seeded.dataSources[1], scheduledFor: '1 hour' })),
      );
      assert.equal(new Set(ids).size, 1, `${new Set(ids).size} tasks`);
      await tasks.cancelTask(ids[0]!);
      await eventually(async () => (await tasks.getTask(ids[0]!)).status === 'CANCELLED');
      await assertDerivedStateIsCurrent(db.pool);
    } finally {
      await client.close();
    }
  });
});
