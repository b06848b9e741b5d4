/**
 * The bad-input matrix: the same kinds of bad input through every door (client API, `taskmgr`,
 * the HTTP API, raw JSON from the temporal CLI). Each gets a clear error naming the problem;
 * nothing crashes (the worker keeps running tasks); nothing is written (tasks, registry rows).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import type { RegistryClient } from '../../src/client/registry.ts';
import { TaskClient } from '../../src/client/task-client.ts';
import { startAdminServer, type AdminServer } from '../../src/http/server.ts';
import { seedRegistry, type SeedSummary } from '../../src/registry/seed.ts';
import {
  createTestDatabase,
  eventually,
  logger,
  snapshot,
  startTestWorker,
  temporalAddress,
  testClient,
  testConfig,
  uniqueName,
  type TestDatabase,
  type TestWorker,
  startWithTemporalCli,
} from '../helpers.ts';

const exec = promisify(execFile);
const BIN = path.join(import.meta.dirname, '..', '..', 'bin', 'taskmgr.js');
const ADMIN = { user: 'admin', password: 'bad input matrix password' };
const SQLISH = "x'); DROP TABLE registry_objects; --";
const UNICODE = 'données/記録/😀';

describe('bad input through every door', () => {
  let db: TestDatabase;
  let worker: TestWorker;
  let registry: RegistryClient;
  let tasks: TaskClient;
  let server: AdminServer;
  let seeded: SeedSummary;
  let before0: Awaited<ReturnType<typeof snapshot>>;
  let taskCount0: number;
  let tally = 0;
  let tasksStarted = 0;

  before(async () => {
    db = await createTestDatabase();
    seeded = await seedRegistry(db.pool, { records: 200, dataSources: 2, hubs: 1, hubSize: 20, seed: 31 });
    worker = await startTestWorker(db.pool);
    registry = await testClient(worker.taskQueue);
    tasks = new TaskClient(registry.client, worker.taskQueue);
    server = await startAdminServer({
      config: testConfig({ HTTP_PORT: '0', ADMIN_PASSWORD: ADMIN.password, TEMPORAL_TASK_QUEUE: worker.taskQueue }),
      pool: db.pool,
      tasks,
      registry,
      logger,
    });
    before0 = await snapshot(db.pool);
    taskCount0 = await tasks.countTasks();
  });
  after(async () => {
    await server?.close();
    await registry?.close();
    await worker?.stop();
    await db?.drop();
  });

  const manyKeys = (n: number, len = 12) => Array.from({ length: n }, (_, i) => `k/${String(i).padStart(len - 2, '0')}`);

  it('the client API refuses each with a message naming the value', async () => {
    const cases: [string, () => Promise<unknown>, RegExp][] = [
      ['unknown method', () => tasks.addNewTask('NO_SUCH_TASK'), /unknown task method "NO_SUCH_TASK"; available methods: GENERATE_CACHE, /],
      ['disabled method', () => tasks.addNewTask('NOTIFY_SUBSCRIBERS'), /NOTIFY_SUBSCRIBERS is disabled .*available methods/],
      ['lower-case method', () => tasks.addTask({ method: 'generate_cache' }), /unknown task method "generate_cache"; available methods: GENERATE_CACHE/],
      ['malformed duration', () => tasks.addNewTask('GENERATE_CACHE', { scheduledFor: 'soonish' }), /scheduledFor "soonish" is not a duration/],
      [
        'time in the past',
        () => tasks.addNewTask('GENERATE_CACHE', { scheduledFor: '2001-01-01T00:00:00Z' }),
        /scheduledFor "2001-01-01T00:00:00Z" is in the past/,
      ],
      [
        'time in the far future',
        () => tasks.addNewTask('GENERATE_CACHE', { scheduledFor: '2999-01-01T00:00:00Z' }),
        /scheduledFor "2999-01-01T00:00:00Z" is more than/,
      ],
      [
        'recurrence too short',
        () => tasks.addNewTask('GENERATE_CACHE', { recurEvery: '10 milliseconds' }),
        /recurEvery "10 milliseconds" must be from 50 milliseconds to 366 days/,
      ],
      [
        'keys of the wrong type',
        () => tasks.addTask({ method: 'INDEX_RECORDS', registryObjectKeys: 'k/1' as never }),
        /registryObjectKeys must be an array of record keys, got string/,
      ],
      [
        'a key of the wrong type',
        () => tasks.addTask({ method: 'INDEX_RECORDS', registryObjectKeys: [42 as never] }),
        /registryObjectKeys\[0\]: record key must be a string, got number/,
      ],
      [
        '10,001 keys',
        () => tasks.addNewTask('INDEX_RECORDS', { registryObjectKeys: manyKeys(10_001) }),
        /registryObjectKeys has 10001 keys; at most 10000 are allowed/,
      ],
      [
        '5 MB log message',
        () => tasks.addNewTask('INDEX_RECORDS', { logMessage: 'x'.repeat(5 * 1024 * 1024) }),
        /logMessage is 5242880 characters long; at most 10000 are allowed/,
      ],
      [
        '10,000 long keys through a client without the database',
        () => tasks.addNewTask('INDEX_RECORDS', { registryObjectKeys: manyKeys(10_000, 500) }),
        /registryObjectKeys take more than 131072 bytes; a TaskClient with the task manager's database \(options.pool\) stores up to 10000 keys/,
      ],
      ['a control character in a key', () => tasks.addNewTask('INDEX_RECORDS', { registryObjectKeys: ['a\u0000b'] }), /contains control characters/],
      [
        'a missing prerequisite',
        () => tasks.addNewTask('INDEX_RECORDS', { prerequisiteTaskId: 'task:GONE:x:00000000' }),
        /prerequisite task "task:GONE:x:00000000" does not exist/,
      ],
      [
        'a task as its own prerequisite',
        () => tasks.addTask({ method: 'INDEX_RECORDS', prerequisiteTaskId: 'task:self' }, 'task:self'),
        /cannot be its own prerequisite/,
      ],
      ['an unknown field', () => tasks.addTask({ method: 'INDEX_RECORDS', priority: 1 } as never), /unknown field "priority"/],
      ['an empty data source', () => tasks.addNewTask('INDEX_RECORDS', { dataSourceKey: ' ' }), /dataSourceKey must not be empty/],
      [
        'a NUL in a data source key',
        () => tasks.addNewTask('INDEX_RECORDS', { dataSourceKey: 'ds\u0000x' }),
        /dataSourceKey contains the control character U\+0000 at position 2; none are allowed/,
      ],
      [
        'a NUL in a prerequisite id',
        () => tasks.addNewTask('INDEX_RECORDS', { prerequisiteTaskId: 'task:\u0000' }),
        /prerequisiteTaskId contains the control character U\+0000/,
      ],
      [
        'a NUL in a log message',
        () => tasks.addNewTask('INDEX_RECORDS', { logMessage: 'line one\nline\u0000two' }),
        /logMessage contains the control character U\+0000 at position 13; only tab and line breaks are allowed/,
      ],
      ['delete: SQL metacharacters in a key', () => registry.deleteRecord(SQLISH), /record "x'\); DROP TABLE registry_objects; --" does not exist/],
      ['delete: unicode key that does not exist', () => registry.deleteRecord(UNICODE), /record "données\/記録\/😀" does not exist/],
      ['delete: empty key', () => registry.deleteRecord(''), /record key must not be empty/],
      ['delete: 600-character key', () => registry.deleteRecord('k'.repeat(600)), /record key is 600 characters long; at most 512/],
      ['status change to an unknown status', () => registry.changeStatus(seeded.hubs[0]!.key, 'GONE' as never), /GONE/],
      [
        'list: unknown status',
        () => tasks.listTasks({ status: 'DONE' as never }),
        /status "DONE" is not one of WAITING, STARTED, COMPLETED, FAILED, CANCELLED/,
      ],
      ['list: quote in a filter', () => tasks.listTasks({ method: "X' OR '1'='1" }), /may only contain letters, digits/],
    ];
    for (const [label, run, message] of cases) {
      await assert.rejects(
        run(),
        (err: Error) => {
          assert.match(err.message, message, label);
          return true;
        },
        label,
      );
      tally += 1;
    }
  });

  it('taskmgr answers each with one line and exit code 1, no stack trace', async () => {
    const env = { ...process.env, TEMPORAL_ADDRESS: temporalAddress(), TEMPORAL_TASK_QUEUE: worker.taskQueue, DATABASE_URL: db.url };
    const cases: [string[], RegExp][] = [
      [['add', 'NO_SUCH'], /^taskmgr: unknown task method "NO_SUCH"; available methods: /],
      [['add', 'NOTIFY_SUBSCRIBERS'], /^taskmgr: task method NOTIFY_SUBSCRIBERS is disabled/],
      [['add', 'GENERATE_CACHE', '-s', 'tomorrowish'], /^taskmgr: scheduledFor "tomorrowish" is not a duration/],
      [['add', 'GENERATE_CACHE', '-s', '1999-12-31T23:59:59Z'], /^taskmgr: scheduledFor "1999-12-31T23:59:59Z" is in the past/],
      [['add', 'GENERATE_CACHE', '-p', 'task:GONE:x:1'], /^taskmgr: prerequisite task "task:GONE:x:1" does not exist/],
      [['add', 'GENERATE_CACHE', '-k', `ok,a${'\u0007'}b`], /^taskmgr: registryObjectKeys\[1\]: record key .* contains control characters/],
      [['list', '--status', 'DONE'], /status "DONE" is not one of/],
      [['cancel', 'task:none'], /^taskmgr: task "task:none" does not exist/],
      [['reschedule', 'task:none', '1 hour'], /^taskmgr: task "task:none" does not exist|^taskmgr: task task:none/],
      [['delete-record', SQLISH], /^taskmgr: record "x'\); DROP TABLE registry_objects; --" does not exist/],
      [['delete-record', ' '], /^taskmgr: record key must not be empty/],
    ];
    for (const [args, message] of cases) {
      const r = await exec(process.execPath, [BIN, ...args], { env }).then(
        (ok) => ({ code: 0, stderr: ok.stderr }),
        (e: { code: number; stderr: string }) => ({ code: e.code, stderr: e.stderr }),
      );
      assert.equal(r.code, 1, args.join(' '));
      assert.match(r.stderr, message, args.join(' '));
      assert.doesNotMatch(r.stderr, /\n\s+at /, `${args.join(' ')}: no stack trace`);
      tally += 1;
    }
  });

  it('the HTTP API answers each with a 4xx JSON error naming the field', async () => {
    const auth = `Basic ${Buffer.from(`${ADMIN.user}:${ADMIN.password}`).toString('base64')}`;
    const post = (url: string, body: unknown) =>
      fetch(`${server.url}${url}`, {
        method: 'POST',
        headers: { authorization: auth, 'content-type': 'application/json', 'x-requested-with': 'test' },
        body: JSON.stringify(body),
      });
    const cases: [string, unknown, number, string, RegExp][] = [
      ['/api/tasks', { method: 'NO_SUCH_TASK' }, 400, 'method', /available methods/],
      ['/api/tasks', { method: 'INDEX_RECORDS', scheduledFor: 'in a bit' }, 400, 'scheduledFor', /not a duration/],
      ['/api/tasks', { method: 'INDEX_RECORDS', registryObjectKeys: { a: 1 } }, 400, 'registryObjectKeys', /must be an array/],
      ['/api/tasks', { method: 'INDEX_RECORDS', prerequisiteTaskId: 'task:GONE:x:2' }, 400, 'prerequisiteTaskId', /does not exist/],
      ['/api/tasks', { method: 'INDEX_RECORDS', registryObjectKeys: manyKeys(10_001) }, 400, 'registryObjectKeys', /at most 10000/],
      ['/api/records/x/status', { status: 'NOPE' }, 400, 'status', /is not one of DRAFT/],
    ];
    for (const [url, body, status, field, message] of cases) {
      const res = await post(url, body);
      const json = (await res.json()) as { error: string; field?: string };
      assert.equal(res.status, status, `${url} ${JSON.stringify(body).slice(0, 60)}: ${json.error}`);
      assert.equal(json.field, field);
      assert.match(json.error, message);
      tally += 1;
    }
  });

  it('raw JSON from the temporal CLI: each task FAILS at once with the reason, and the worker stays healthy', async () => {
    const inputs: [unknown, RegExp][] = [
      [[1, 2], /task input must be a JSON object, got an array/],
      [{ logMessage: 'no method' }, /method undefined is not a task method name/],
      [{ method: 'NO_SUCH_TASK' }, /unknown task method "NO_SUCH_TASK"; available methods/],
      [{ method: 'INDEX_RECORDS', registryObjectKeys: 'one' }, /registryObjectKeys must be an array/],
      [{ method: 'INDEX_RECORDS', scheduledFor: 'whenever' }, /scheduledFor "whenever" is not a duration/],
      [{ method: 'INDEX_RECORDS', colour: 'red' }, /unknown field "colour"/],
      // PostgreSQL refuses NUL in text: refused before any activity would write it (and retry).
      [{ method: 'INDEX_RECORDS', dataSourceKey: 'a\u0000b' }, /dataSourceKey contains the control character U\+0000/],
      [{ method: 'INDEX_RECORDS', prerequisiteTaskId: 'x\u0000' }, /prerequisiteTaskId contains the control character U\+0000/],
      [{ method: 'INDEX\u0000RECORDS' }, /method "INDEX\\u0000RECORDS" is not a task method name/],
      // One key over the limit, through the temporal binary (about 90 KB: within one argument).
      [
        { method: 'INDEX_RECORDS', registryObjectKeys: Array.from({ length: 10_001 }, (_, i) => `k/${i}`) },
        /registryObjectKeys has 10001 keys; at most 10000 are allowed/,
      ],
    ];
    const ids: string[] = [];
    for (const [input] of inputs) {
      const id = uniqueName('raw-bad');
      ids.push(id);
      await startWithTemporalCli(worker.taskQueue, 'registryTask', id, input);
    }
    // A task as its own prerequisite, and a cycle of two, started the same way.
    const self = uniqueName('raw-self');
    const [a, b] = [uniqueName('raw-cycle-a'), uniqueName('raw-cycle-b')];
    // A registers with B when it is added: B does not exist yet, so A fails at once (a cycle cannot form);
    // B then finds A FAILED.
    for (const [id, prereq, when] of [
      [self, self],
      [a, b, '2 seconds'],
      [b, a],
    ] as const) {
      const input = { method: 'INDEX_RECORDS', dataSourceKey: id, prerequisiteTaskId: prereq, ...(when ? { scheduledFor: when } : {}) };
      await startWithTemporalCli(worker.taskQueue, 'registryTask', id, input);
    }
    const expect: [string, RegExp][] = [
      ...ids.map((id, i) => [id, inputs[i]![1]] as [string, RegExp]),
      [self, /cannot be its own prerequisite/],
      [a, /prerequisite task raw-cycle-b-\w+ does not exist|leads back to this task/],
      [b, /leads back to this task|prerequisite task .* is FAILED/],
    ];
    for (const [id, message] of expect) {
      const t = await eventually(async () => {
        const info = await tasks.getTask(id);
        return info.status === 'FAILED' ? info : undefined;
      }, 30_000);
      assert.match(t.error!, message, id);
      tally += 1;
    }
    tasksStarted = expect.length + 1; // the raw starts and the health check
    const healthId = await tasks.addNewTask('INDEX_RECORDS', { registryObjectKeys: [seeded.hubs[0]!.key] });
    const healthy = await eventually(async () => {
      const t = await tasks.getTask(healthId);
      return t.status === 'COMPLETED' || t.status === 'FAILED' ? t : undefined;
    }, 30_000);
    assert.equal(healthy.status, 'COMPLETED');
  });

  it(`covers at least 40 cases, and none of them wrote anything`, async () => {
    assert.ok(tally >= 40, `${tally} cases`);
    assert.deepEqual(await snapshot(db.pool), before0, 'the registry is unchanged');
    // Only the raw temporal-CLI starts (FAILED at once) and the health check exist as tasks.
    const added = await eventually(async () => {
      const n = (await tasks.countTasks()) - taskCount0;
      return n === tasksStarted ? n : undefined;
    }, 15_000).catch(async () => (await tasks.countTasks()) - taskCount0);
    assert.equal(added, tasksStarted, `${added} tasks were added`);
  });
});
