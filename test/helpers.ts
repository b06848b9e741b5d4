/** Shared test set-up: a database per test file, a worker on its own task queue, a client. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import crypto from 'node:crypto';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { bundleWorkflowCode, NativeConnection, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import pg from 'pg';
import { loadConfig, type Config } from '../src/config.ts';
import { RegistryClient, type RegistryClientOptions } from '../src/client/registry.ts';
import { createPool, type Pool } from '../src/db/pool.ts';
import { migrate } from '../src/db/migrate.ts';
import { createLogger } from '../src/log.ts';
import { recheckQuality, regenerateCache, reindexRecords } from '../src/registry/derived.ts';
import { createRegistryWorker, installRuntime, WORKFLOWS_PATH, type RegistryWorker } from '../src/worker.ts';
import { QUIET_BUNDLER_LOGGER } from '../src/workflow-bundle.ts';
import { loadTasks, TASKS_DIR, type LoadedTasks } from '../src/taskmgr/discovery.ts';
import { TaskClient } from '../src/client/task-client.ts';
import { seedRegistry, type SeedOptions, type SeedSummary } from '../src/registry/seed.ts';
import type { TaskInfo } from '../src/taskmgr/info.ts';
import { coalescerWorkflowId } from '../src/client/workflow-ids.ts';
import { coalescerStateQuery } from '../src/workflows/definitions.ts';

export const logger = createLogger(process.env.TEST_LOG_LEVEL ?? 'error');
installRuntime(logger, process.env.TEST_LOG_LEVEL ?? 'error');

function required(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run the tests with \`npm test\`, which starts the servers`);
  return v;
}

export const temporalAddress = () => required('TEST_TEMPORAL_ADDRESS');
export const uniqueName = (prefix: string) => `${prefix}-${crypto.randomBytes(5).toString('hex')}`;

export interface TestDatabase {
  url: string;
  pool: Pool;
  drop(): Promise<void>;
}

/** Creates a fresh, migrated database for one test file; drop() removes it. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const adminUrl = required('TEST_DATABASE_URL');
  const name = uniqueName('test_registry').replace(/-/g, '_');
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  await migrate(url.toString());
  const pool = createPool(url.toString(), { logger });
  return {
    url: url.toString(),
    pool,
    async drop() {
      await pool.end();
      const a = new pg.Client({ connectionString: adminUrl });
      await a.connect();
      await a.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await a.end();
    },
  };
}

let bundle: Promise<WorkflowBundleWithSourceMap> | undefined;
/** The workflow bundle, built once per test process. */
export const workflowBundle = () => (bundle ??= bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: QUIET_BUNDLER_LOGGER }));

/** Configuration for in-process workers: no metrics endpoint (test files run side by side; metrics.test.ts scrapes a worker process). */
export function testConfig(overrides: Record<string, string> = {}): Config {
  return loadConfig({ ...process.env, TEMPORAL_ADDRESS: temporalAddress(), METRICS_ADDRESS: 'off', ...overrides });
}

export interface TestWorker {
  worker: RegistryWorker;
  taskQueue: string;
  stop(): Promise<void>;
}

/** Runs a real worker on a task queue of its own until stop(). */
export async function startTestWorker(
  pool: Pool,
  taskQueue = uniqueName('registry-tasks-test'),
  env: Record<string, string> = {},
  tasks?: LoadedTasks,
): Promise<TestWorker> {
  const config = testConfig({ TEMPORAL_TASK_QUEUE: taskQueue, ...env });
  const connection = await NativeConnection.connect({ address: temporalAddress() });
  const client = new Client({ connection: await Connection.connect({ address: temporalAddress() }), namespace: 'default' });
  const worker = await createRegistryWorker({
    config,
    pool,
    connection,
    client,
    namespace: 'default',
    taskQueue,
    workflowBundle: await workflowBundle(),
    tasks,
  });
  const running = worker.run();
  return {
    worker,
    taskQueue,
    async stop() {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await running;
      await connection.close();
      await client.connection.close();
    },
  };
}

/** The real task modules and the test fixtures (test/fixtures/tasks: tasks that hang, hold, throw, kill their worker). */
export async function tasksWithFixtures(): Promise<LoadedTasks> {
  const real = await loadTasks(TASKS_DIR);
  const fixtures = await loadTasks(path.join(import.meta.dirname, 'fixtures', 'tasks'));
  return {
    files: { available: [...real.files.available, ...fixtures.files.available].sort(), disabled: real.files.disabled },
    definitions: new Map([...real.definitions, ...fixtures.definitions]),
  };
}

/** A RegistryClient on the test server and task queue. */
export async function testClient(taskQueue: string, followUp?: RegistryClientOptions['followUp'], pool?: Pool): Promise<RegistryClient> {
  const connection = await Connection.connect({ address: temporalAddress() });
  return new RegistryClient(new Client({ connection, namespace: 'default' }), { taskQueue, followUp, pool });
}

/** Polls `fn` until it returns a truthy value (visibility is eventually consistent). */
export async function eventually<T>(fn: () => Promise<T | undefined | false>, timeoutMs = 15_000, intervalMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Records of a data source that have relations (their deletion wakes its coalescer), hubs aside, in key order. */
export async function recordsWithRelations(pool: Pool, dataSourceKey: string, n: number, offset = 0): Promise<string[]> {
  const { rows } = await pool.query<{ key: string }>(
    `SELECT ro.key FROM registry_objects ro JOIN data_sources d ON d.id = ro.data_source_id
      WHERE d.key = $1 AND ro.key NOT LIKE '%/hub-%' AND EXISTS (SELECT 1 FROM relations r WHERE r.from_id = ro.id)
      ORDER BY ro.key OFFSET $2 LIMIT $3`,
    [dataSourceKey, offset, n],
  );
  return rows.map((r) => r.key);
}

/** The ids of the records related to a record (either direction). */
export async function relatedIdsOfRecord(pool: Pool, key: string): Promise<string[]> {
  const { rows } = await pool.query<{ id: string }>(
    'SELECT rr.related_id AS id FROM registry_objects ro, related_records(ro.id, ro.key) rr WHERE ro.key = $1',
    [key],
  );
  return rows.map((r) => r.id);
}

/** Records of the data source with relations, related to none of `relatedIds` nor to `key`, and not among them (last keys first). */
export async function recordsUnrelatedTo(pool: Pool, dataSourceKey: string, key: string, relatedIds: string[], n: number): Promise<string[]> {
  const { rows } = await pool.query<{ key: string }>(
    `SELECT ro.key FROM registry_objects ro JOIN data_sources d ON d.id = ro.data_source_id
      WHERE d.key = $1 AND ro.key <> $2 AND ro.key NOT LIKE '%/hub-%' AND NOT ro.id = ANY($3::bigint[])
        AND EXISTS (SELECT 1 FROM relations r WHERE r.from_id = ro.id)
        AND NOT EXISTS (SELECT 1 FROM related_records(ro.id, ro.key) rr WHERE rr.related_id = ANY($3::bigint[]) OR rr.related_key = $2)
      ORDER BY ro.key DESC LIMIT $4`,
    [dataSourceKey, key, relatedIds, n],
  );
  return rows.map((r) => r.key);
}

/**
 * Deletes `first`, holds its round's plan before the plan claims anything, deletes `second`
 * meanwhile (its wake-up signal sent), then lets the plan go, which claims both. The coalescer
 * sees the signal when its workflow task ends: after the round (a round of local activities is one
 * workflow task), or, with `deliveredWhilePlanning`, at the task's heartbeat while the plan still
 * waits (80% of its 30-s timeout). The hold is a lapsed awake mark of the data source, row-locked:
 * deletions read it (a key-share lock), find it lapsed and signal; the plan waits to renew it.
 */
export async function deleteOneWhileTheOthersRoundPlans(
  client: RegistryClient,
  pool: Pool,
  where: { dataSourceKey: string; taskQueue: string; deliveredWhilePlanning: boolean },
  first: string,
  second: string,
) {
  const { dataSourceKey, taskQueue } = where;
  const dsId = (await pool.query<{ id: number }>('SELECT id FROM data_sources WHERE key = $1', [dataSourceKey])).rows[0]!.id;
  await pool.query(
    `INSERT INTO coalescer_awake (data_source_id, awake_until) VALUES ($1, now() - interval '1 minute')
     ON CONFLICT (data_source_id) DO UPDATE SET awake_until = EXCLUDED.awake_until`,
    [dsId],
  );
  const locker = await pool.connect();
  try {
    await locker.query('BEGIN');
    await locker.query('SELECT 1 FROM coalescer_awake WHERE data_source_id = $1 FOR NO KEY UPDATE', [dsId]);
    const coalescer = client.client.workflow.getHandle(coalescerWorkflowId(dataSourceKey, taskQueue));
    const state = () => coalescer.query(coalescerStateQuery).catch(() => undefined);
    const planStarted = Date.now();
    const firstDeletion = await client.deleteRecord(first);
    // (Not asked of the coalescer: a query waits for the workflow task the plan holds.)
    const planWaits = () =>
      pool
        .query(`SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE 'INSERT INTO coalescer_awake%'`)
        .then((r) => r.rowCount! > 0);
    await eventually(planWaits, 15_000, 50);
    const secondDeletion = await client.deleteRecord(second);
    // Its run ends once its wake-up signal is in the coalescer's history.
    await client.deletionHandle(second, secondDeletion.runId).result();
    if (where.deliveredWhilePlanning) await eventually(async () => (await state())?.queued.includes(secondDeletion.opId), 40_000, 100);
    // Past the heartbeat, the coalescer may have seen the signal while the plan waited: not the case asked for.
    else if (Date.now() - planStarted > 20_000) throw new Error(`the plan was held ${Date.now() - planStarted} ms, past a workflow task heartbeat`);
    await locker.query('COMMIT');
    return { firstDeletion, secondDeletion, coalescer };
  } finally {
    await locker.query('ROLLBACK').catch(() => {});
    locker.release();
  }
}

/** Starts a workflow with the temporal binary, as an operator would: its plain JSON input, no client of ours. */
export async function startWithTemporalCli(taskQueue: string, type: string, workflowId: string, input: unknown): Promise<void> {
  const args = [
    'workflow',
    'start',
    '--address',
    temporalAddress(),
    '--task-queue',
    taskQueue,
    '--type',
    type,
    '--workflow-id',
    workflowId,
    '--input',
    JSON.stringify(input),
  ];
  await promisify(execFile)(process.env.TEMPORAL_CLI!, args);
}

/** Waits until a task has ended (COMPLETED, FAILED or CANCELLED) and returns it. */
export function settledTask(tasks: TaskClient, id: string, timeoutMs = 30_000): Promise<TaskInfo> {
  return eventually(async () => {
    const t = await tasks.getTask(id);
    return ['COMPLETED', 'FAILED', 'CANCELLED'].includes(t.status) ? t : undefined;
  }, timeoutMs);
}

/** Every row of the registry's tables, for "nothing else changed" comparisons. */
export async function snapshot(pool: Pool) {
  const q = async (sql: string) => (await pool.query(sql)).rows;
  return {
    records: await q('SELECT id, key, quality_level, quality_report, quality_updated_at, updated_at FROM registry_objects ORDER BY id'),
    index: await q('SELECT record_id, record_key, quality_level, document::text, indexed_at FROM record_index ORDER BY record_id'),
    cache: await q('SELECT record_id, rendering, generated_at FROM record_cache ORDER BY record_id'),
    relations: await q('SELECT from_id, to_key, relation_type FROM relations ORDER BY 1, 2, 3'),
    operations: await q('SELECT op_id, affected_count, batch_count, completed_at FROM registry_operations ORDER BY op_id'),
    followups: await q('SELECT op_id, batch_no, record_id FROM followup_items ORDER BY 1, 2, 3'),
  };
}

/** Recomputing every record's derived state from scratch changes nothing, and no index or cache
 *  entry of a deleted record remains: the derived state is entirely up to date. */
export async function assertDerivedStateIsCurrent(pool: Pool): Promise<void> {
  const ids = (await pool.query<{ id: number }>('SELECT id FROM registry_objects ORDER BY id')).rows.map((r) => r.id);
  const changed = [(await recheckQuality(pool, ids)).changed, (await reindexRecords(pool, ids)).changed, (await regenerateCache(pool, ids)).changed];
  assert.deepEqual(changed, [0, 0, 0], 'derived state differs from a full recomputation');
  const orphans = await pool.query(
    `SELECT 'index' AS t, record_id FROM record_index WHERE record_id NOT IN (SELECT id FROM registry_objects)
     UNION ALL SELECT 'cache', record_id FROM record_cache WHERE record_id NOT IN (SELECT id FROM registry_objects)`,
  );
  assert.deepEqual(orphans.rows, [], 'index or cache entries of deleted records remain');
}

/** A task manager for one test file: a seeded database, a worker on its own task queue, a client with the database. */
export interface TaskManagerFixture {
  db: TestDatabase;
  seeded: SeedSummary;
  worker: TestWorker;
  tasks: TaskClient;
}

/**
 * Sets up a TaskManagerFixture before the enclosing describe's tests and tears it down after them.
 * Its fields are filled in by the time the tests run (read them there, not at describe time).
 */
export function useTaskManager(seed: SeedOptions): TaskManagerFixture {
  const fixture = {} as TaskManagerFixture;
  before(async () => {
    fixture.db = await createTestDatabase();
    fixture.seeded = await seedRegistry(fixture.db.pool, seed);
    fixture.worker = await startTestWorker(fixture.db.pool);
    const connection = await Connection.connect({ address: temporalAddress() });
    fixture.tasks = new TaskClient(new Client({ connection, namespace: 'default' }), fixture.worker.taskQueue, { pool: fixture.db.pool });
  });
  after(async () => {
    await fixture.tasks?.close();
    await fixture.worker?.stop();
    await fixture.db?.drop();
  });
  return fixture;
}

/**
 * What an execution's history wrote to its visibility record, in order: each search-attribute upsert
 * as its keys (sorted, comma-joined) and each memo change as 'memo'. Patches upsert TemporalChangeVersion.
 */
export async function visibilityWrites(client: Client, workflowId: string, runId?: string): Promise<string[]> {
  const { events } = await client.workflow.getHandle(workflowId, runId).fetchHistory();
  return (events ?? []).flatMap((e) => {
    const upserted = e.upsertWorkflowSearchAttributesEventAttributes?.searchAttributes?.indexedFields;
    if (upserted) return [Object.keys(upserted).sort().join(',')];
    return e.workflowPropertiesModifiedEventAttributes ? ['memo'] : [];
  });
}
