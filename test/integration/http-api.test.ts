/** The admin HTTP API on the real servers: every route, every role, CSRF, bad requests, and the four ways to add a task agreeing. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { TaskClient } from '../../src/client/task-client.ts';
import { loadCredentials, AuthConfigError } from '../../src/http/auth.ts';
import { startAdminServer, type AdminServer } from '../../src/http/server.ts';
import type { TaskInfo } from '../../src/taskmgr/info.ts';
import { seedRegistry, type SeedSummary } from '../../src/registry/seed.ts';
import {
  createTestDatabase,
  eventually,
  startTestWorker,
  temporalAddress,
  testClient,
  testConfig,
  type TestDatabase,
  type TestWorker,
  startWithTemporalCli,
} from '../helpers.ts';
import type { RegistryClient } from '../../src/client/registry.ts';

const exec = promisify(execFile);
const BIN = path.join(import.meta.dirname, '..', '..', 'bin', 'taskmgr.js');
const ADMIN = { user: 'admin', password: 'correct horse battery staple' };
const VIEWER = { user: 'viewer', password: 'read only but long enough' };

describe('the admin HTTP API', () => {
  let db: TestDatabase;
  let worker: TestWorker;
  let registry: RegistryClient;
  let tasks: TaskClient;
  let server: AdminServer;
  let seeded: SeedSummary;
  const logLines: string[] = [];

  const call = async (
    method: string,
    url: string,
    opts: {
      body?: unknown;
      auth?: { user: string; password: string };
      cookie?: string;
      csrf?: string;
      raw?: string;
      contentType?: string;
      noChangeHeader?: boolean;
    } = {},
  ) => {
    const headers: Record<string, string> = {};
    if (opts.auth) headers.authorization = `Basic ${Buffer.from(`${opts.auth.user}:${opts.auth.password}`).toString('base64')}`;
    // Scripts with Basic credentials send X-Requested-With on changes (a cross-site form cannot).
    if (opts.auth && !opts.noChangeHeader) headers['x-requested-with'] = 'test';
    if (opts.cookie) headers.cookie = opts.cookie;
    if (opts.csrf) headers['x-csrf-token'] = opts.csrf;
    if (opts.body !== undefined || opts.raw !== undefined) headers['content-type'] = opts.contentType ?? 'application/json';
    const res = await fetch(`${server.url}${url}`, { method, headers, body: opts.raw ?? (opts.body === undefined ? undefined : JSON.stringify(opts.body)) });
    const text = await res.text();
    let json: any;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.status, json, text, headers: res.headers };
  };
  const login = async (who: { user: string; password: string }) => {
    const r = await call('POST', '/api/login', { body: who });
    assert.equal(r.status, 200, r.text);
    const cookie = r.headers.get('set-cookie')!.split(';')[0]!;
    return { cookie, csrf: r.json.csrfToken as string };
  };
  const settled = (id: string) =>
    eventually(async () => {
      const t = await tasks.getTask(id);
      return ['COMPLETED', 'FAILED', 'CANCELLED'].includes(t.status) ? t : undefined;
    }, 30_000);
  const enc = encodeURIComponent;

  before(async () => {
    db = await createTestDatabase();
    seeded = await seedRegistry(db.pool, { records: 300, dataSources: 2, hubs: 1, hubSize: 30, seed: 13 });
    worker = await startTestWorker(db.pool);
    registry = await testClient(worker.taskQueue);
    tasks = new TaskClient(registry.client, worker.taskQueue, { pool: db.pool });
    const config = testConfig({
      HTTP_PORT: '0',
      ADMIN_PASSWORD: ADMIN.password,
      VIEWER_PASSWORD: VIEWER.password,
      TEMPORAL_TASK_QUEUE: worker.taskQueue,
      LOG_LEVEL: 'debug',
    });
    const sink = new Writable({
      write(chunk, _enc, done) {
        logLines.push(String(chunk));
        done();
      },
    });
    server = await startAdminServer({ config, pool: db.pool, tasks, registry, logger: pino({ level: 'debug' }, sink), temporalUiUrl: 'http://127.0.0.1:8233' });
  });
  after(async () => {
    await server?.close();
    await registry?.close();
    await worker?.stop();
    await db?.drop();
  });

  it('listens on loopback by default and refuses a public address without configured credentials', () => {
    assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(testConfig({}).http.host, '127.0.0.1');
    assert.throws(
      () => loadCredentials(testConfig({ HTTP_HOST: '0.0.0.0' })),
      (e: Error) => e instanceof AuthConfigError && /HTTP_HOST=0\.0\.0\.0 is not a loopback address: set ADMIN_PASSWORD/.test(e.message),
    );
    assert.doesNotThrow(() => loadCredentials(testConfig({ HTTP_HOST: '0.0.0.0', ADMIN_PASSWORD: ADMIN.password })));
  });

  it('every route answers 401 without credentials, and the page itself loads', async () => {
    const routes: [string, string][] = [
      ['GET', '/api/session'],
      ['GET', '/api/methods'],
      ['GET', '/api/tasks'],
      ['POST', '/api/tasks'],
      ['POST', '/api/tasks/flush'],
      ['GET', '/api/tasks/x'],
      ['POST', '/api/tasks/x/cancel'],
      ['POST', '/api/tasks/x/reschedule'],
      ['POST', '/api/tasks/x/retry'],
      ['GET', '/api/data-sources'],
      ['GET', '/api/records'],
      ['GET', '/api/records/x'],
      ['DELETE', '/api/records/x'],
      ['GET', '/api/records/x/deletion'],
      ['POST', '/api/records/x/status'],
    ];
    for (const [method, url] of routes) {
      const r = await call(method, url, method === 'GET' || method === 'DELETE' ? {} : { body: {} });
      assert.equal(r.status, 401, `${method} ${url}`);
      assert.match(r.json.error, /sign in first/);
    }
    const wrong = await call('GET', '/api/tasks', { auth: { user: 'admin', password: 'nope' } });
    assert.equal(wrong.status, 401);
    // Large bodies are read only by the routes that take thousands of keys, after their guard: a
    // caller who has not signed in cannot make the server read megabytes anywhere else.
    const big = { user: 'admin', password: 'x'.repeat(2 * 1024 * 1024) };
    for (const url of ['/api/login', '/api/logout', '/api/no-such-route']) {
      const r = await call('POST', url, { body: big });
      assert.equal(r.status, 413, url);
      assert.match(r.json.error, /larger than the limit of 1048576 bytes/);
    }
    assert.equal((await call('POST', '/api/tasks', { body: { method: 'INDEX_RECORDS', logMessage: big.password } })).status, 401, 'the guard answers first');
    assert.equal((await call('GET', '/api/health')).status, 200);
    const page = await call('GET', '/');
    assert.equal(page.status, 200);
    assert.match(page.text, /<title>Background Task Manager<\/title>/);
    assert.match(page.headers.get('content-security-policy')!, /default-src 'self'/);
    assert.equal(page.headers.get('x-frame-options'), 'DENY');
  });

  it('a session cookie needs the CSRF token for every change; Basic credentials need the X-Requested-With header', async () => {
    const s = await login(ADMIN);
    const without = await call('POST', '/api/tasks', {
      cookie: s.cookie,
      body: { method: 'INDEX_RECORDS', scheduledFor: '1 hour', dataSourceKey: 'csrf-test' },
    });
    assert.equal(without.status, 403);
    assert.match(without.json.error, /X-CSRF-Token/);
    const wrongToken = await call('POST', '/api/tasks', {
      cookie: s.cookie,
      csrf: 'x'.repeat(43),
      body: { method: 'INDEX_RECORDS', scheduledFor: '1 hour', dataSourceKey: 'csrf-test' },
    });
    assert.equal(wrongToken.status, 403);
    assert.equal(await tasks.countTasks({ dataSourceKey: 'csrf-test' }), 0, 'nothing was added');
    const ok = await call('POST', '/api/tasks', {
      cookie: s.cookie,
      csrf: s.csrf,
      body: { method: 'INDEX_RECORDS', scheduledFor: '1 hour', dataSourceKey: 'csrf-test' },
    });
    assert.equal(ok.status, 201, ok.text);
    const bare = await call('POST', `/api/tasks/${enc(ok.json.taskId)}/cancel`, { auth: ADMIN, noChangeHeader: true });
    assert.equal(bare.status, 403);
    assert.match(bare.json.error, /X-Requested-With/);
    assert.equal((await tasks.getTask(ok.json.taskId)).status, 'WAITING', 'the refused cancel changed nothing');
    const cancel = await call('POST', `/api/tasks/${enc(ok.json.taskId)}/cancel`, { auth: ADMIN });
    assert.equal(cancel.status, 200, cancel.text);
    // The cookie is HttpOnly and SameSite=Strict; logout ends the session on the server.
    const cookieHeader = (await call('POST', '/api/login', { body: ADMIN })).headers.get('set-cookie')!;
    assert.match(cookieHeader, /HttpOnly/);
    assert.match(cookieHeader, /SameSite=Strict/);
    assert.equal((await call('POST', '/api/logout', { cookie: s.cookie })).status, 200);
    assert.equal((await call('GET', '/api/session', { cookie: s.cookie })).status, 401);
  });

  it('the viewer role reads every route and is refused every change', async () => {
    const v = await login(VIEWER);
    const session = await call('GET', '/api/session', { cookie: v.cookie });
    assert.deepEqual([session.json.user, session.json.role], ['viewer', 'viewer']);
    const hub = seeded.hubs[0]!.key;
    const waiting = await tasks.addNewTask('GENERATE_CACHE', { dataSourceKey: seeded.dataSources[1], scheduledFor: '1 hour' });
    for (const url of ['/api/methods', '/api/tasks', `/api/tasks/${enc(waiting)}`, '/api/data-sources', '/api/records?q=drought', `/api/records/${enc(hub)}`]) {
      const r = await call('GET', url, { cookie: v.cookie });
      assert.equal(r.status, 200, `${url}: ${r.text}`);
    }
    const changes: [string, string, unknown][] = [
      ['POST', '/api/tasks', { method: 'INDEX_RECORDS' }],
      ['POST', '/api/tasks/flush', { failed: true }],
      ['POST', `/api/tasks/${enc(waiting)}/cancel`, undefined],
      ['POST', `/api/tasks/${enc(waiting)}/reschedule`, { scheduledFor: '2 hours' }],
      ['POST', `/api/tasks/${enc(waiting)}/retry`, undefined],
      ['DELETE', `/api/records/${enc(hub)}`, undefined],
      ['POST', `/api/records/${enc(hub)}/status`, { status: 'DRAFT' }],
    ];
    for (const [method, url, body] of changes) {
      for (const how of [{ cookie: v.cookie, csrf: v.csrf }, { auth: VIEWER }]) {
        const r = await call(method, url, { ...how, body });
        assert.equal(r.status, 403, `${method} ${url}`);
        assert.match(r.json.error, /read-only viewer role/);
      }
    }
    assert.equal((await tasks.getTask(waiting)).status, 'WAITING', 'the viewer changed nothing');
    assert.equal((await db.pool.query('SELECT count(*)::int AS n FROM registry_objects WHERE key = $1', [hub])).rows[0].n, 1, 'the record is still there');
    assert.equal((await db.pool.query('SELECT count(*)::int AS n FROM registry_operations')).rows[0].n, 0, 'no operation was started');
    await tasks.cancelTask(waiting);
  });

  it('the admin lists, reads, reschedules, cancels, retries and flushes tasks', async () => {
    const a = { auth: ADMIN };
    const methods = await call('GET', '/api/methods', a);
    assert.ok(methods.json.available.includes('GENERATE_CACHE'));
    assert.ok(methods.json.disabled.includes('NOTIFY_SUBSCRIBERS'));

    const add = await call('POST', '/api/tasks', {
      ...a,
      body: { method: 'RUN_QUALITY_CHECK', dataSourceKey: seeded.dataSources[0], scheduledFor: '1 hour', logMessage: 'from the API' },
    });
    assert.equal(add.status, 201, add.text);
    const id = add.json.taskId as string;
    // Dedup: another add that the waiting task covers (same data source, same start) returns it.
    const again = await call('POST', '/api/tasks', {
      ...a,
      body: { method: 'RUN_QUALITY_CHECK', dataSourceKey: seeded.dataSources[0], scheduledFor: '1 hour' },
    });
    assert.deepEqual([again.status, again.json], [200, { taskId: id, deduplicated: true }]);

    const listed = await eventually(async () =>
      (await call('GET', `/api/tasks?status=WAITING&dataSource=${seeded.dataSources[0]}`, a)).json.tasks.find((t: { taskId: string }) => t.taskId === id),
    );
    assert.equal(listed.logMessage, 'from the API');
    assert.deepEqual(listed.waitingFor, ['schedule']);
    const byText = await eventually(async () =>
      (await call('GET', `/api/tasks?text=${enc(id.slice(0, 25))}`, a)).json.tasks.find((t: { taskId: string }) => t.taskId === id),
    );
    assert.ok(byText);

    const detail = await call('GET', `/api/tasks/${enc(id)}`, a);
    assert.equal(detail.json.status, 'WAITING');
    assert.equal(detail.json.temporalUiUrl, `http://127.0.0.1:8233/namespaces/default/workflows/${enc(id)}`);

    const moved = await call('POST', `/api/tasks/${enc(id)}/reschedule`, { ...a, body: { scheduledFor: '2 hours' } });
    assert.equal(moved.status, 200, moved.text);
    assert.ok(Date.parse(moved.json.scheduledFor) > Date.now() + 90 * 60_000);

    assert.equal((await call('POST', `/api/tasks/${enc(id)}/cancel`, a)).status, 200);
    assert.equal((await settled(id)).status, 'CANCELLED');
    const twice = await call('POST', `/api/tasks/${enc(id)}/cancel`, a);
    assert.equal(twice.status, 409);
    assert.match(twice.json.error, /is CANCELLED; only WAITING or STARTED tasks can be cancelled/);

    const retried = await call('POST', `/api/tasks/${enc(id)}/retry`, a);
    assert.equal(retried.status, 201, retried.text);
    const redo = await settled(retried.json.taskId);
    assert.equal(redo.status, 'COMPLETED', redo.error);
    assert.equal(redo.input.logMessage, 'from the API');

    const failing = await settled((await call('POST', '/api/tasks', { ...a, body: { method: 'INDEX_RECORDS', dataSourceKey: 'no-such-source' } })).json.taskId);
    assert.equal(failing.status, 'FAILED');
    await eventually(async () => (await tasks.listTasks({ status: 'FAILED' })).tasks.some((x) => x.taskId === failing.taskId));
    const flushed = await call('POST', '/api/tasks/flush', { ...a, body: { failed: true } });
    assert.equal(flushed.status, 200);
    assert.ok(flushed.json.deleted >= 1, flushed.text);
    const old = await call('POST', '/api/tasks/flush', { ...a, body: { completedOlderThan: '24 hours' } });
    assert.deepEqual([old.status, old.json], [200, { deleted: 0 }]);
    // Temporal deletes executions asynchronously.
    await eventually(async () => (await call('GET', `/api/tasks/${enc(failing.taskId)}`, a)).status === 404, 60_000, 1000);
  });

  it('data sources, record search, a record, a status change and a deletion with its progress', async () => {
    const a = { auth: ADMIN };
    const sources = await call('GET', '/api/data-sources', a);
    assert.deepEqual(sources.json.map((s: { key: string }) => s.key).sort(), [...seeded.dataSources].sort());
    assert.equal(
      sources.json.reduce((n: number, s: { records: number }) => n + s.records, 0),
      300,
    );
    // A task scheduled hours ahead is scheduled, not in progress; the page words it so.
    const later = await tasks.addNewTask('GENERATE_CACHE', { dataSourceKey: seeded.dataSources[0]!, scheduledFor: '3 hours' });
    const withLater = await eventually(
      async () => {
        const r = await call('GET', '/api/data-sources', a);
        const d = r.json.find((s: { key: string }) => s.key === seeded.dataSources[0]);
        return d.scheduledTasks === 1 && d;
      },
      15_000,
      300,
    );
    assert.equal(withLater.backgroundWorkInProgress, false);
    assert.deepEqual([withLater.runningTasks, withLater.queuedTasks], [0, 0]);
    assert.ok(Math.abs(Date.parse(withLater.nextScheduledFor) - Date.now() - 3 * 3600_000) < 60_000, withLater.nextScheduledFor);
    await tasks.cancelTask(later);

    const hub = seeded.hubs[0]!;
    const found = await call('GET', `/api/records?q=${enc(hub.key)}`, a);
    assert.ok(
      found.json.records.some((r: { key: string }) => r.key === hub.key),
      found.text,
    );
    const page = await call('GET', '/api/records?limit=10&offset=10&class=collection', a);
    assert.equal(page.json.records.length, 10);
    assert.ok(page.json.records.every((r: { class: string }) => r.class === 'collection'));

    const rec = await call('GET', `/api/records/${enc(hub.key)}`, a);
    assert.equal(rec.json.key, hub.key);
    assert.ok(rec.json.relations.length >= 30);
    assert.ok(Array.isArray(rec.json.qualityReport.checks));

    const related = rec.json.relations.find((r: { class: string }) => r.class === 'collection').key as string;
    const statusChange = await call('POST', `/api/records/${enc(related)}/status`, { ...a, body: { status: 'DRAFT' } });
    assert.equal(statusChange.status, 202, statusChange.text);
    const refused = await call('POST', `/api/records/${enc(related)}/status`, { ...a, body: { status: 'PUBLISHED' } });
    assert.equal(refused.status, 409, refused.text);

    const del = await call('DELETE', `/api/records/${enc(hub.key)}`, a);
    assert.equal(del.status, 202, del.text);
    assert.deepEqual([del.json.deleted, del.json.plannedByRound], [true, true]);
    const done = await eventually(async () => {
      const p = await call('GET', `/api/records/${enc(hub.key)}/deletion`, a);
      return p.json.phase === 'done' ? p.json : undefined;
    }, 60_000);
    assert.equal(done.batchesDone, done.batchesTotal);
    assert.ok(done.affected >= 30, `${done.affected} related records, counted by the round`);
    assert.equal((await call('GET', `/api/records/${enc(hub.key)}`, a)).status, 404);
    // A second delete of the key is refused (404) in a run of its own; the first caller's run id still follows the first.
    assert.equal((await call('DELETE', `/api/records/${enc(hub.key)}`, a)).status, 404);
    const own = await call('GET', `/api/records/${enc(hub.key)}/deletion?runId=${del.json.runId}`, a);
    assert.equal(own.status, 200, own.text);
    assert.equal(own.json.phase, 'done');
    assert.equal(own.json.affected, done.affected);
    const badRun = await call('GET', `/api/records/${enc(hub.key)}/deletion?runId=${enc("1' OR 1=1")}`, a);
    assert.equal(badRun.status, 400);
    assert.equal(badRun.json.field, 'runId');
    assert.match(badRun.json.error, /runId "1' OR 1=1" is not a run id/);
    const gone = await call('DELETE', `/api/records/${enc('no/such/record')}`, a);
    assert.equal(gone.status, 404, gone.text);
  });

  it('quarantine: a viewer sees a refused record, an admin retries it and it leaves once it goes through', async () => {
    const { rows } = await db.pool.query<{ id: number; key: string; data_source_id: number }>(
      'SELECT id, key, data_source_id FROM registry_objects ORDER BY id DESC LIMIT 1',
    );
    const record = rows[0]!;
    await db.pool.query(
      "INSERT INTO quarantined_records (record_id, record_key, data_source_id, found_by, error, sqlstate) VALUES ($1, $2, $3, 'http-test', 'value too long', '22001')",
      [record.id, record.key, record.data_source_id],
    );
    const listed = await call('GET', '/api/quarantine', { auth: VIEWER });
    assert.equal(listed.status, 200, listed.text);
    assert.equal(listed.json.total, 1);
    assert.equal(listed.json.records[0].recordKey, record.key);
    assert.equal(listed.json.records[0].error, 'value too long');
    assert.equal((await call('POST', '/api/quarantine/retry', { auth: VIEWER, body: {} })).status, 403);
    const retried = await call('POST', '/api/quarantine/retry', { auth: ADMIN, body: { keys: [record.key] } });
    assert.equal(retried.status, 200, retried.text);
    assert.deepEqual(retried.json, { tried: 1, released: 1, stillQuarantined: 0 });
    assert.equal((await call('GET', '/api/quarantine', { auth: VIEWER })).json.total, 0);
  });

  it('bad requests get a 4xx JSON error naming the field, and change nothing', async () => {
    const a = { auth: ADMIN };
    const before = await tasks.countTasks();
    const cases: { method?: string; url?: string; body?: unknown; raw?: string; contentType?: string; status: number; field?: string; error: RegExp }[] = [
      { body: { method: 'NO_SUCH_TASK' }, status: 400, field: 'method', error: /unknown task method "NO_SUCH_TASK"; available methods: GENERATE_CACHE/ },
      { body: { method: 'NOTIFY_SUBSCRIBERS' }, status: 400, field: 'method', error: /NOTIFY_SUBSCRIBERS is disabled/ },
      { body: { method: 'INDEX_RECORDS', scheduledFor: 'soonish' }, status: 400, field: 'scheduledFor', error: /"soonish" is not a duration/ },
      { body: { method: 'INDEX_RECORDS', recurEvery: '1 ms' }, status: 400, field: 'recurEvery', error: /at least|from 50 milliseconds/ },
      { body: { method: 'INDEX_RECORDS', registryObjectKeys: 'abc' }, status: 400, field: 'registryObjectKeys', error: /must be an array/ },
      { body: { method: 'INDEX_RECORDS', registryObjectKeys: [42] }, status: 400, field: 'registryObjectKeys', error: /registryObjectKeys\[0\]/ },
      { body: { method: 'INDEX_RECORDS', colour: 'blue' }, status: 400, field: 'colour', error: /unknown field "colour"/ },
      { body: { method: 'INDEX_RECORDS', loop: { iteration: 3 } }, status: 400, field: 'loop', error: /unknown field "loop"/ },
      { body: [1, 2], status: 400, field: 'body', error: /JSON object/ },
      { raw: '{"method": ', status: 400, error: /JSON/ },
      { raw: 'method=INDEX_RECORDS', contentType: 'application/x-www-form-urlencoded', status: 415, error: /send JSON/ },
      { body: { method: 'INDEX_RECORDS', logMessage: 'x'.repeat(25 * 1024 * 1024) }, status: 413, error: /larger than the limit/ },
      {
        method: 'GET',
        url: '/api/tasks?status=BOGUS',
        status: 400,
        field: 'status',
        error: /status "BOGUS" is not one of WAITING, STARTED, COMPLETED, FAILED, CANCELLED/,
      },
      { method: 'GET', url: '/api/tasks?pageSize=0', status: 400, field: 'pageSize', error: /pageSize/ },
      { method: 'GET', url: `/api/tasks?method=${enc("X' OR 1=1")}`, status: 400, field: 'method', error: /may only contain/ },
      { method: 'GET', url: '/api/tasks?from=yesterday', status: 400, field: 'from', error: /from "yesterday"/ },
      { method: 'GET', url: '/api/records?quality=4', status: 400, field: 'quality', error: /quality/ },
      {
        method: 'GET',
        url: '/api/records?class=dataset',
        status: 400,
        field: 'class',
        error: /class "dataset" is not one of collection, party, activity, service/,
      },
      { method: 'POST', url: '/api/tasks/flush', body: { completedOlderThan: 'a while' }, status: 400, field: 'completedOlderThan', error: /duration/ },
      { method: 'POST', url: '/api/tasks/flush', body: {}, status: 400, error: /.+/ },
      { method: 'POST', url: '/api/tasks/task%3Anope/reschedule', body: { scheduledFor: '1 hour' }, status: 404, error: /task:nope/ },
      {
        method: 'POST',
        url: `/api/records/${enc(seeded.hubs[0]!.key)}/status`,
        body: { status: 'GONE' },
        status: 400,
        field: 'status',
        error: /status "GONE" is not one of DRAFT/,
      },
      { method: 'GET', url: '/api/nothing-here', status: 404, error: /no route GET \/api\/nothing-here/ },
    ];
    for (const c of cases) {
      const r = await call(c.method ?? 'POST', c.url ?? '/api/tasks', { ...a, body: c.body, raw: c.raw, contentType: c.contentType });
      const label = `${c.method ?? 'POST'} ${c.url ?? '/api/tasks'} ${c.raw ?? JSON.stringify(c.body)?.slice(0, 80)}`;
      assert.equal(r.status, c.status, `${label}: ${r.text.slice(0, 300)}`);
      assert.equal(typeof r.json?.error, 'string', label);
      assert.match(r.json.error, c.error, label);
      if (c.field) assert.equal(r.json.field, c.field, label);
    }
    assert.equal(await tasks.countTasks(), before, 'no task was added');
  });

  it('the largest task (10,000 keys of 512 three-byte characters, 15 MB) is accepted over HTTP, and one key more is refused naming the limit', async () => {
    const a = { auth: ADMIN };
    const keys = (n: number) => Array.from({ length: n }, (_, i) => `http/large/${i}/`.padEnd(512, '記'));
    const add = await call('POST', '/api/tasks', {
      ...a,
      body: { method: 'INDEX_RECORDS', dataSourceKey: seeded.dataSources[1], registryObjectKeys: keys(10_000), scheduledFor: '1 hour' },
    });
    assert.equal(add.status, 201, add.text.slice(0, 300));
    const shown = await call('GET', `/api/tasks/${enc(add.json.taskId)}`, a);
    assert.equal(shown.json.keyCount, 10_000);
    const more = await call('POST', '/api/tasks', { ...a, body: { method: 'INDEX_RECORDS', registryObjectKeys: keys(10_001) } });
    assert.equal(more.status, 400);
    assert.match(more.json.error, /10001 keys; at most 10000 are allowed/);
    await tasks.cancelTask(add.json.taskId);
  });

  it('the four ways of adding a task agree: client, taskmgr CLI, temporal CLI, HTTP API', async () => {
    const input = { method: 'RUN_QUALITY_CHECK', dataSourceKey: seeded.dataSources[1]!, logMessage: 'four ways' };
    const env = { ...process.env, TEMPORAL_ADDRESS: temporalAddress(), TEMPORAL_TASK_QUEUE: worker.taskQueue, DATABASE_URL: db.url };
    // One at a time: while one WAITS, the next with the same method and data source would merge into it.
    const viaClient = await settled(await tasks.addNewTask(input.method, { dataSourceKey: input.dataSourceKey, logMessage: input.logMessage }));
    const cli = await exec(process.execPath, [BIN, 'add', input.method, '-d', input.dataSourceKey, '-m', input.logMessage, '--json'], { env });
    const viaCli = await settled(JSON.parse(cli.stdout).taskId);
    const temporalId = `four-ways-${Date.now()}`;
    await startWithTemporalCli(worker.taskQueue, 'registryTask', temporalId, input);
    const viaTemporal = await settled(temporalId);
    const api = await call('POST', '/api/tasks', { auth: ADMIN, body: input });
    const viaApi = await settled(api.json.taskId);
    const shape = (t: TaskInfo) => ({ status: t.status, method: t.method, input: t.input, output: t.output, logs: t.logs.map((l) => l.message) });
    assert.deepEqual(shape(viaCli), shape(viaClient));
    assert.deepEqual(shape(viaTemporal), shape(viaClient));
    assert.deepEqual(shape(viaApi), shape(viaClient));
  });

  it('no password or session secret reaches the log', async () => {
    await call('POST', '/api/login', { body: { user: 'admin', password: 'a wrong password guess' } });
    const s = await login(ADMIN);
    await call('GET', '/api/tasks', { cookie: s.cookie });
    await call('GET', '/api/tasks', { auth: VIEWER });
    const log = logLines.join('');
    assert.ok(log.includes('failed sign-in'), 'failed sign-ins are logged');
    for (const secret of [
      ADMIN.password,
      VIEWER.password,
      'a wrong password guess',
      s.cookie.split('=')[1]!,
      s.csrf,
      Buffer.from(`${VIEWER.user}:${VIEWER.password}`).toString('base64'),
    ]) {
      assert.ok(!log.includes(secret), `the log holds a secret (${secret.slice(0, 6)}…)`);
    }
  });
});
