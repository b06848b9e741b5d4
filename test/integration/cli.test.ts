/** The `taskmgr` command against the real servers: the same tasks as the client API. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { TaskClient } from '../../src/client/task-client.ts';
import { seedRegistry, type SeedSummary } from '../../src/registry/seed.ts';
import { createTestDatabase, eventually, startTestWorker, temporalAddress, type TestDatabase, type TestWorker } from '../helpers.ts';

const exec = promisify(execFile);
const BIN = path.join(import.meta.dirname, '..', '..', 'bin', 'taskmgr.js');

describe('the taskmgr command', () => {
  let db: TestDatabase;
  let worker: TestWorker;
  let tasks: TaskClient;
  let seeded: SeedSummary;

  const taskmgr = async (...args: string[]) => {
    try {
      const { stdout, stderr } = await exec(process.execPath, [BIN, ...args], {
        env: { ...process.env, TEMPORAL_ADDRESS: temporalAddress(), TEMPORAL_TASK_QUEUE: worker.taskQueue, DATABASE_URL: db.url },
      });
      return { code: 0, stdout, stderr };
    } catch (err) {
      const e = err as { code: number; stdout: string; stderr: string };
      return { code: e.code, stdout: e.stdout, stderr: e.stderr };
    }
  };
  const settled = (id: string) =>
    eventually(async () => {
      const t = await tasks.getTask(id);
      return ['COMPLETED', 'FAILED', 'CANCELLED'].includes(t.status) ? t : undefined;
    }, 30_000);

  before(async () => {
    db = await createTestDatabase();
    seeded = await seedRegistry(db.pool, { records: 300, dataSources: 2, hubs: 1, hubSize: 30, seed: 9 });
    worker = await startTestWorker(db.pool);
    tasks = new TaskClient(new Client({ connection: await Connection.connect({ address: temporalAddress() }) }), worker.taskQueue);
  });
  after(async () => {
    await tasks?.close();
    await worker?.stop();
    await db?.drop();
  });

  it('status: workers polling, tasks by status, follow-ups and quarantine, on one screen and as JSON', async () => {
    await db.pool.query(
      "INSERT INTO registry_operations (op_id, kind, data_source_id, handed_off_at) SELECT 'cli-status-stuck', 'DELETE_RECORD', id, now() - interval '42 seconds' FROM data_sources ORDER BY id LIMIT 1",
    );
    try {
      const json = await taskmgr('status', '--json');
      assert.equal(json.code, 0, json.stderr);
      const s = JSON.parse(json.stdout);
      assert.ok(s.workers.workflowPollers >= 1, json.stdout);
      assert.ok(s.workers.taskRunPollers >= 1);
      assert.deepEqual(Object.keys(s.tasks), ['WAITING', 'STARTED', 'COMPLETED', 'FAILED', 'CANCELLED']);
      assert.equal(s.followUps[0].dataSourceKey, seeded.dataSources[0]);
      assert.ok(s.followUps[0].oldestSeconds >= 42);
      assert.equal(s.quarantine.total, 0);
      assert.deepEqual(s.alerts, { configured: false });
      assert.equal(typeof s.lastDay.completed, 'number');
      const text = await taskmgr('status');
      assert.match(text.stdout, /^ {2}Workers: {5}1 worker polling \(/m);
      assert.match(text.stdout, new RegExp(`^  Follow-ups:  ${seeded.dataSources[0]}: 1 operation, the oldest \\d+ s$`, 'm'));
      assert.match(text.stdout, /^ {2}Quarantine: {2}none$/m);
      assert.match(text.stdout, /^ {2}Last 24 h: {3}\d+ runs? completed, \d+ failed/m);
      assert.match(text.stdout, /^ {2}Alerts: {6}not read \(set PROMETHEUS_URL to see them\)$/m);
      assert.ok(text.stdout.split('\n').length <= 10, 'one screen');
    } finally {
      await db.pool.query("DELETE FROM registry_operations WHERE op_id = 'cli-status-stuck'");
    }
  });

  it('add, show and list a task; the CLI and the client see the same task', async () => {
    const add = await taskmgr('add', 'GENERATE_CACHE', '-d', seeded.dataSources[0]!, '-m', 'from the CLI', '--json');
    assert.equal(add.code, 0, add.stderr);
    const { taskId } = JSON.parse(add.stdout);
    const viaClient = await settled(taskId);
    assert.equal(viaClient.status, 'COMPLETED');
    const show = await taskmgr('show', taskId, '--json');
    assert.deepEqual(JSON.parse(show.stdout), JSON.parse(JSON.stringify(viaClient)));
    const text = await taskmgr('show', taskId);
    assert.match(text.stdout, /^task {10}task:GENERATE_CACHE:/m);
    assert.match(text.stdout, /^status {8}COMPLETED$/m);
    assert.match(text.stdout, /^log:\n.* INFO {2}cache entries regenerated/m);
    const list = await eventually(async () => {
      const r = await taskmgr('list', '--status', 'completed', '--method', 'GENERATE_CACHE', '--json');
      return JSON.parse(r.stdout).tasks.find((t: { taskId: string }) => t.taskId === taskId);
    });
    assert.equal(list.status, 'COMPLETED');
    const table = await taskmgr('list', '-s', 'COMPLETED');
    assert.match(table.stdout, /^TASK +METHOD +STATUS +DATA SOURCE +ADDED +ENDED$/m);
  });

  it('show --follow waits for the end and prints the task', async () => {
    const id = await tasks.addNewTask('INDEX_RECORDS', { dataSourceKey: seeded.dataSources[1]!, scheduledFor: '8 seconds' });
    const follow = await taskmgr('show', id, '--follow');
    assert.equal(follow.code, 0);
    assert.match(follow.stdout, /^WAITING +waiting for schedule/m);
    assert.match(follow.stdout, /^status {8}COMPLETED$/m);
  });

  it('reschedule, cancel and retry', async () => {
    const id = (await taskmgr('add', 'RUN_QUALITY_CHECK', '-d', seeded.dataSources[1]!, '-s', '1 hour')).stdout.trim();
    assert.match((await taskmgr('reschedule', id, '2 hours')).stdout, /now scheduled for /);
    assert.equal((await taskmgr('cancel', id)).code, 0);
    assert.equal((await settled(id)).status, 'CANCELLED');
    const again = (await taskmgr('retry', id)).stdout.trim();
    assert.notEqual(again, id);
    assert.equal((await settled(again)).status, 'COMPLETED');
    const late = await taskmgr('reschedule', again, '1 hour');
    assert.equal(late.code, 1);
    assert.equal(late.stderr.trim(), `taskmgr: task ${again} is COMPLETED; only WAITING tasks can be rescheduled`);
  });

  it(
    'add --keys-file takes the largest task (10,000 keys of 255 characters, past what one argument holds) and refuses one key more',
    { timeout: 120_000 },
    async () => {
      const dir = await mkdtemp(path.join(tmpdir(), 'taskmgr-keys-'));
      try {
        const keys = (n: number) =>
          Array.from({ length: n }, (_, i) => `${seeded.dataSources[0]}/collection/${String(i).padStart(6, '0')}-${'k'.repeat(255)}`.slice(0, 255)).join('\n');
        const largest = path.join(dir, 'largest.txt');
        await writeFile(largest, keys(10_000));
        const add = await taskmgr('add', 'INDEX_RECORDS', '--keys-file', largest, '-s', '1 hour', '--json');
        assert.equal(add.code, 0, add.stderr);
        const { taskId } = JSON.parse(add.stdout);
        assert.equal((await tasks.getTask(taskId)).keyCount, 10_000);
        assert.equal((await taskmgr('cancel', taskId)).code, 0);

        const over = path.join(dir, 'over.txt');
        await writeFile(over, keys(10_001));
        const refused = await taskmgr('add', 'INDEX_RECORDS', '--keys-file', over);
        assert.equal(refused.code, 1);
        assert.match(refused.stderr, /^taskmgr: registryObjectKeys has 10001 keys; at most 10000 are allowed/);
        const missing = await taskmgr('add', 'INDEX_RECORDS', '--keys-file', path.join(dir, 'none.txt'));
        assert.equal(missing.code, 1);
        assert.match(missing.stderr, /^taskmgr: --keys-file ".*none\.txt" cannot be read \(ENOENT\)/);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  );

  it('quarantine lists a record PostgreSQL refused, and retry releases it once it goes through', async () => {
    const { rows } = await db.pool.query<{ id: number; key: string; data_source_id: number }>(
      'SELECT id, key, data_source_id FROM registry_objects ORDER BY id LIMIT 1',
    );
    const record = rows[0]!;
    await db.pool.query(
      "INSERT INTO quarantined_records (record_id, record_key, data_source_id, found_by, error, sqlstate) VALUES ($1, $2, $3, 'cli-test', 'string is too long for tsvector (1048580 bytes, max 1048575 bytes)', '54000')",
      [record.id, record.key, record.data_source_id],
    );
    const listed = await taskmgr('quarantine');
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /^1 record in quarantine:$/m);
    assert.ok(listed.stdout.includes(record.key));
    assert.match(listed.stdout, /string is too long for tsvector/);
    const json = JSON.parse((await taskmgr('quarantine', '--json')).stdout);
    assert.equal(json.total, 1);
    assert.equal(json.records[0].recordKey, record.key);
    // The record is fine now (the "fix"): retrying releases it.
    const retried = await taskmgr('quarantine', 'retry', record.key);
    assert.equal(retried.code, 0, retried.stderr);
    assert.match(retried.stdout, /^retried 1: 1 released, 0 still refused$/m);
    assert.match((await taskmgr('quarantine')).stdout, /^no record is in quarantine$/m);
  });

  it('methods lists available and disabled methods', async () => {
    const r = await taskmgr('methods', '--json');
    assert.deepEqual(JSON.parse(r.stdout), {
      available: ['GENERATE_CACHE', 'HOURLY_REGISTRY_MAINTENANCE', 'INDEX_RECORDS', 'RUN_QUALITY_CHECK', 'SYNC_DATASOURCE'],
      disabled: ['NOTIFY_SUBSCRIBERS'],
    });
  });

  it('bad input gets one clear line naming the value and the allowed ones, exit 1, no stack trace', async () => {
    const cases: [string[], RegExp][] = [
      [['add', 'NO_SUCH'], /^taskmgr: unknown task method "NO_SUCH"; available methods: GENERATE_CACHE, /],
      [['add', 'NOTIFY_SUBSCRIBERS'], /^taskmgr: task method NOTIFY_SUBSCRIBERS is disabled/],
      [['add', 'GENERATE_CACHE', '-s', 'next tuesday'], /^taskmgr: scheduledFor "next tuesday" is not a duration; expected "<number> <unit>"/],
      [['add', 'GENERATE_CACHE', '-r', '1 ms'], /^taskmgr: recurEvery "1 ms" must be from 50 milliseconds/],
      [['show', 'task:none'], /^taskmgr: task "task:none" does not exist/],
      [['flush', '--older-than', 'a while'], /^taskmgr: --older-than "a while" is not a duration/],
      [['seed', '--records', '1000001'], /--records must be a whole number from 1 to 1000000, got "1000001"/],
    ];
    for (const [args, message] of cases) {
      const r = await taskmgr(...args);
      assert.equal(r.code, 1, args.join(' '));
      assert.match(r.stderr, message);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    }
    const badStatus = await taskmgr('list', '--status', 'DONE');
    assert.notEqual(badStatus.code, 0);
    assert.match(badStatus.stderr, /status "DONE" is not one of WAITING, STARTED, COMPLETED, FAILED, CANCELLED/);
  });

  it('flush deletes failed tasks', async () => {
    const failed = await settled((await taskmgr('add', 'INDEX_RECORDS', '-d', 'unknown-source')).stdout.trim());
    assert.equal(failed.status, 'FAILED');
    await eventually(async () => (await tasks.listTasks({ status: 'FAILED' })).tasks.some((t) => t.taskId === failed.taskId));
    assert.match((await taskmgr('flush', '--failed')).stdout, /^deleted [1-9]\d* failed tasks$/m);
  });
});
