/**
 * Metrics, scraped as Prometheus would after real work. A `taskmgr worker` process with a metrics
 * endpoint: the SDK's metrics under the names Temporal's alert examples use (counters with
 * _total, durations in seconds) and ours (tasks finished by method and status, their durations,
 * follow-up rounds and records by data source, follow-up lag, quarantine, WAITING tasks, the
 * PostgreSQL pool). The page server: requests by route and failed sign-ins at /api/metrics.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { TaskClient } from '../../src/client/task-client.ts';
import { pollerIdentities } from '../../src/client/worker-wait.ts';
import { freePort } from '../../src/dev/temporal-dev-server.ts';
import { startAdminServer, type AdminServer } from '../../src/http/server.ts';
import { seedRegistry, type SeedSummary } from '../../src/registry/seed.ts';
import { createTestDatabase, eventually, settledTask, temporalAddress, testClient, testConfig, uniqueName, type TestDatabase } from '../helpers.ts';
import { startTaskmgrWorker, testWorkerEnv } from '../taskmgr-process.ts';
import type { RegistryClient } from '../../src/client/registry.ts';
import { DASHBOARD_FILE } from '../../scripts/render-dashboard.ts';

const RULES_FILE = path.join(import.meta.dirname, '..', '..', 'observability', 'prometheus', 'registry-taskmgr.rules.yml');

/** The value of one series in a Prometheus text page (undefined when absent). */
function series(page: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of page.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}

describe('metrics', () => {
  let db: TestDatabase;
  let seeded: SeedSummary;
  let registry: RegistryClient;
  let tasks: TaskClient;
  let metricsUrl: string;
  let worker: ReturnType<typeof startTaskmgrWorker>;
  const taskQueue = uniqueName('registry-metrics');

  before(async () => {
    db = await createTestDatabase();
    seeded = await seedRegistry(db.pool, { records: 300, dataSources: 2, hubs: 2, hubSize: 30, seed: 51 });
    const port = await freePort();
    metricsUrl = `http://127.0.0.1:${port}/metrics`;
    worker = startTaskmgrWorker({
      ...testWorkerEnv(db.url, temporalAddress(), taskQueue),
      METRICS_ADDRESS: `127.0.0.1:${port}`,
      METRICS_SAMPLE_EVERY: '200 milliseconds',
    });
    await eventually(
      () =>
        fetch(metricsUrl).then(
          (r) => r.ok,
          () => false,
        ),
      60_000,
      250,
    );
    registry = await testClient(taskQueue, undefined, db.pool);
    tasks = new TaskClient(registry.client, taskQueue, { pool: db.pool });
    // The endpoint answers once the runtime is up, before the worker has bundled its workflows and
    // polls (over 15 s on a loaded machine, when a deletion would be told no worker took it up).
    await eventually(async () => (await pollerIdentities(registry.client, taskQueue, 'workflow')).length > 0, 120_000, 250);
  });
  after(async () => {
    worker?.child.kill('SIGTERM');
    await worker?.exited;
    await registry?.close();
    await db?.drop();
  });

  const scrape = () => fetch(metricsUrl).then((r) => r.text());

  it("a worker that has done work exports the SDK's metrics and ours, moving", { timeout: 120_000 }, async () => {
    const hub = seeded.hubs[0]!;
    const dataSource = hub.key.split('/')[0]!;
    await registry.deleteRecord(hub.key);
    await registry.awaitDeletion(hub.key);
    const done = await settledTask(tasks, await tasks.addNewTask('INDEX_RECORDS', { registryObjectKeys: [seeded.hubs[1]!.key] }));
    assert.equal(done.status, 'COMPLETED');
    const failed = await settledTask(tasks, await tasks.addNewTask('GENERATE_CACHE', { dataSourceKey: 'no-such-source' }));
    assert.equal(failed.status, 'FAILED');

    const page = await eventually(
      async () => {
        const p = await scrape();
        return (series(p, 'registry_tasks_finished_total', { method: 'GENERATE_CACHE', status: 'FAILED' }) ?? 0) >= 1 && p;
      },
      30_000,
      500,
    );
    // The SDK's, as Temporal's alert examples name them.
    for (const name of [
      'temporal_num_pollers',
      'temporal_worker_task_slots_available',
      'temporal_workflow_task_schedule_to_start_latency_seconds_bucket',
      'temporal_activity_execution_latency_seconds_bucket',
      'temporal_workflow_completed_total',
      'temporal_sticky_cache_size',
    ]) {
      assert.notEqual(series(page, name), undefined, `${name} is exported`);
    }
    assert.ok(series(page, 'temporal_num_pollers', { poller_type: 'workflow_task' })! > 0, 'the worker polls');
    // Ours.
    assert.ok(series(page, 'registry_tasks_finished_total', { method: 'INDEX_RECORDS', status: 'COMPLETED' })! >= 1);
    assert.ok(series(page, 'registry_task_duration_seconds_count', { method: 'INDEX_RECORDS' })! >= 1);
    assert.ok(series(page, 'registry_followup_rounds_total', { data_source: dataSource })! >= 1);
    assert.ok(series(page, 'registry_followup_records_processed_total', { data_source: dataSource })! >= hub.related - 1, "the hub's related records");
    assert.notEqual(series(page, 'registry_pg_pool_connections', { state: 'in_use' }), undefined);
    assert.equal(series(page, 'registry_tasks_waiting', { method: 'SYNC_DATASOURCE' }), 0, 'every method, 0 included');
  });

  it('every metric the alert rules and the Grafana dashboard use is exported by the worker or the page', { timeout: 120_000 }, async () => {
    // Work that moves the rest: a maintenance run, and a workflow task that fails (an unknown
    // workflow type: the worker fails its task, as after a bad deploy).
    // (With a data source of its own: a plain add would merge into the worker's WAITING hourly loop.)
    assert.equal(
      (await settledTask(tasks, await tasks.addNewTask('HOURLY_REGISTRY_MAINTENANCE', { dataSourceKey: 'metrics-test' }), 60_000)).status,
      'COMPLETED',
    );
    const broken = await registry.client.workflow.start('noSuchWorkflowType', { taskQueue, workflowId: uniqueName('broken') });
    const workerPage = await eventually(
      async () => {
        const p = await scrape();
        return series(p, 'temporal_workflow_task_execution_failed_total') !== undefined && p;
      },
      30_000,
      500,
    );
    await broken.terminate();
    const server = await startAdminServer({
      config: testConfig({ HTTP_PORT: '0', VIEWER_PASSWORD: 'metrics viewer password', TEMPORAL_TASK_QUEUE: taskQueue }),
      pool: db.pool,
      tasks,
      registry,
      logger: pino({ level: 'silent' }),
    });
    const auth = { authorization: `Basic ${Buffer.from('viewer:metrics viewer password').toString('base64')}` };
    await fetch(`${server.url}/api/data-sources`, { headers: { authorization: `Basic ${Buffer.from('viewer:wrong').toString('base64')}` } });
    const pagePage = await (await fetch(`${server.url}/api/metrics`, { headers: auth })).text();
    await server.close();
    const exported = new Set([...`${workerPage}\n${pagePage}`.matchAll(/^([a-z_]+)(?:\{| )/gm)].map((m) => m[1]!));
    const used = new Set<string>();
    const sources = [fs.readFileSync(RULES_FILE, 'utf8'), fs.readFileSync(DASHBOARD_FILE, 'utf8')];
    for (const text of sources) for (const m of text.matchAll(/\b((?:temporal|registry|taskmgr)_[a-z_]+)/g)) used.add(m[1]!);
    // Exported on the first failed request only: no healthy worker has it.
    const onFailureOnly = new Set(['temporal_request_failure_total']);
    const missing = [...used].filter((name) => !exported.has(name) && !onFailureOnly.has(name));
    assert.deepEqual(missing, [], `used but not exported: ${missing.join(', ')}`);
    assert.ok(used.size >= 20, `the rules and dashboard use ${used.size} metrics`);
  });

  it('follow-up lag and queued operations show a stuck queue, per data source, and go back to 0', { timeout: 60_000 }, async () => {
    // An operation handed to its coalescer a minute ago and not finished: what a stuck follow-up looks like.
    const ds = (await db.pool.query<{ id: number; key: string }>('SELECT id, key FROM data_sources ORDER BY id DESC LIMIT 1')).rows[0]!;
    await db.pool.query(
      "INSERT INTO registry_operations (op_id, kind, data_source_id, handed_off_at) VALUES ('metrics-stuck', 'DELETE_RECORD', $1, now() - interval '60 seconds')",
      [ds.id],
    );
    await eventually(async () => (series(await scrape(), 'registry_followup_lag_seconds', { data_source: ds.key }) ?? 0) >= 60, 10_000, 200);
    assert.equal(series(await scrape(), 'registry_followup_queued_operations', { data_source: ds.key }), 1);
    await db.pool.query("UPDATE registry_operations SET completed_at = now() WHERE op_id = 'metrics-stuck'");
    await eventually(async () => series(await scrape(), 'registry_followup_lag_seconds', { data_source: ds.key }) === 0, 10_000, 200);
  });

  it('a second worker on a taken metrics address stops at once, naming METRICS_ADDRESS', async () => {
    const second = startTaskmgrWorker({ ...testWorkerEnv(db.url, temporalAddress(), taskQueue), METRICS_ADDRESS: new URL(metricsUrl).host });
    const { code, output } = await second.exited;
    assert.equal(code, 1);
    assert.match(output, /^taskmgr: METRICS_ADDRESS 127\.0\.0\.1:\d+: .*Address already in use.*METRICS_ADDRESS=off/m);
  });

  it('the page server counts requests per route and failed sign-ins, for viewers and admins only', async () => {
    const config = testConfig({
      HTTP_PORT: '0',
      ADMIN_PASSWORD: 'metrics admin password',
      VIEWER_PASSWORD: 'metrics viewer password',
      TEMPORAL_TASK_QUEUE: taskQueue,
    });
    const server: AdminServer = await startAdminServer({ config, pool: db.pool, tasks, registry, logger: pino({ level: 'silent' }) });
    try {
      const basic = (user: string, password: string) => ({ authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` });
      assert.equal((await fetch(`${server.url}/api/metrics`)).status, 401);
      assert.equal((await fetch(`${server.url}/api/data-sources`, { headers: basic('admin', 'not the password') })).status, 401);
      await fetch(`${server.url}/api/tasks/some-task-id`, { headers: basic('viewer', 'metrics viewer password') });
      const res = await fetch(`${server.url}/api/metrics`, { headers: basic('viewer', 'metrics viewer password') });
      assert.equal(res.status, 200);
      const page = await res.text();
      assert.equal(series(page, 'taskmgr_failed_sign_ins_total', { via: 'basic', outcome: 'wrong' }), 1);
      assert.ok(series(page, 'taskmgr_http_requests_total', { route: '/api/tasks/:id' })! >= 1, 'by route pattern, not by id');
      assert.equal(series(page, 'taskmgr_http_requests_total', { route: '/api/metrics', status: '401' }), 1);
      assert.ok(!page.includes('some-task-id'));
      assert.notEqual(series(page, 'process_cpu_user_seconds_total'), undefined);
    } finally {
      await server.close();
    }
  });
});
