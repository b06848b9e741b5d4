/**
 * Credential guessing and cookies on the admin HTTP API: failed sign-ins are limited per client
 * address and per user at that address on every path (login and Basic) and logged; behind a
 * trusted proxy the client's address comes from X-Forwarded-For; over TLS the session cookie is
 * __Host- and Secure and answers carry HSTS.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { TaskClient } from '../../src/client/task-client.ts';
import type { RegistryClient } from '../../src/client/registry.ts';
import { startAdminServer, type AdminServer } from '../../src/http/server.ts';
import { createTestDatabase, testClient, testConfig, uniqueName, type TestDatabase } from '../helpers.ts';

const ADMIN = { user: 'admin', password: 'correct horse battery staple' };

describe('the admin HTTP API against credential guessing', () => {
  let db: TestDatabase;
  let registry: RegistryClient;
  let server: AdminServer;
  let replica: AdminServer;
  const logLines: string[] = [];

  before(async () => {
    db = await createTestDatabase();
    const taskQueue = uniqueName('registry-hardening');
    registry = await testClient(taskQueue);
    const tasks = new TaskClient(registry.client, taskQueue, { pool: db.pool });
    // The test is the proxy: it connects from 127.0.0.1 and names the client in X-Forwarded-For.
    const config = testConfig({
      HTTP_PORT: '0',
      ADMIN_PASSWORD: ADMIN.password,
      TEMPORAL_TASK_QUEUE: taskQueue,
      HTTP_TRUST_PROXY: '127.0.0.1',
      HTTP_SECURE_COOKIES: 'true',
    });
    const sink = new Writable({
      write(chunk, _enc, done) {
        logLines.push(String(chunk));
        done();
      },
    });
    server = await startAdminServer({ config, pool: db.pool, tasks, registry, logger: pino({ level: 'info' }, sink) });
    // A second `taskmgr serve` behind the same address: its own process memory, the same database.
    replica = await startAdminServer({ config, pool: db.pool, tasks, registry, logger: pino({ level: 'silent' }) });
  });
  after(async () => {
    await server?.close();
    await replica?.close();
    await registry?.close();
    await db?.drop();
  });

  const basic = (password: string, from: string) =>
    fetch(`${server.url}/api/data-sources`, {
      headers: { authorization: `Basic ${Buffer.from(`${ADMIN.user}:${password}`).toString('base64')}`, 'x-forwarded-for': from },
    });
  const login = (password: string, from: string) =>
    fetch(`${server.url}/api/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-forwarded-for': from },
      body: JSON.stringify({ user: ADMIN.user, password }),
    });

  it('5 wrong passwords from one address block that user there (429, Retry-After), on every path, not elsewhere; each is logged', async () => {
    const attacker = '203.0.113.5';
    for (let i = 0; i < 3; i++) assert.equal((await basic(`guess ${i}`, attacker)).status, 401);
    for (let i = 3; i < 5; i++) assert.equal((await login(`guess ${i}`, attacker)).status, 401);
    const blocked = await basic(ADMIN.password, attacker);
    assert.equal(blocked.status, 429, 'even the right password is refused there for the rest of the window');
    assert.ok(Number(blocked.headers.get('retry-after')) > 0);
    assert.match(((await blocked.json()) as { error: string }).error, /too many failed sign-ins from 203\.0\.113\.5/);
    assert.equal((await login(ADMIN.password, attacker)).status, 429);
    // The admin elsewhere is not locked out.
    assert.equal((await basic(ADMIN.password, '198.51.100.7')).status, 200);
    const failures = logLines.filter((l) => l.includes('failed sign-in') && l.includes(attacker));
    assert.equal(failures.length, 5);
    assert.ok(failures.some((l) => l.includes('"via":"basic"')) && failures.some((l) => l.includes('"via":"login"')));
    assert.ok(logLines.some((l) => l.includes('too many failures') && l.includes(attacker)));
    assert.ok(!logLines.some((l) => l.includes('guess ') || l.includes(ADMIN.password)), 'no password reaches the log');
  });

  it('over TLS the session cookie is __Host- and Secure, and answers carry HSTS', async () => {
    const res = await login(ADMIN.password, '198.51.100.8');
    assert.equal(res.status, 200);
    const cookie = res.headers.get('set-cookie')!;
    assert.match(cookie, /^__Host-tm_session=/);
    assert.match(cookie, /; Secure/);
    assert.match(cookie, /Path=\//);
    assert.match(res.headers.get('strict-transport-security')!, /max-age=\d+/);
    const session = await fetch(`${server.url}/api/session`, { headers: { cookie: cookie.split(';')[0]!, 'x-forwarded-for': '198.51.100.8' } });
    assert.equal(session.status, 200);
  });

  it('a session made on one replica works on another, and logging out on one ends it on both', async () => {
    const res = await login(ADMIN.password, '198.51.100.9');
    const cookie = res.headers.get('set-cookie')!.split(';')[0]!;
    const { csrfToken } = (await res.json()) as { csrfToken: string };
    const on = (srv: AdminServer, p: string, init: RequestInit = {}) =>
      fetch(`${srv.url}${p}`, { ...init, headers: { cookie, 'x-forwarded-for': '198.51.100.9', ...(init.headers as Record<string, string>) } });
    assert.equal((await on(replica, '/api/session')).status, 200);
    // A change past the guard (signed in, admin, CSRF token right) reaches the route: 404, no such task.
    const change = await on(replica, '/api/tasks/task%3Anone/cancel', { method: 'POST', headers: { 'x-csrf-token': csrfToken } });
    assert.equal(change.status, 404, await change.text());
    const stored = await db.pool.query<{ id_digest: string }>('SELECT id_digest FROM http_sessions');
    assert.ok(
      stored.rows.every((r) => !cookie.includes(r.id_digest)),
      'the table holds digests, not cookie values',
    );
    assert.equal((await on(replica, '/api/logout', { method: 'POST' })).status, 200);
    assert.equal((await on(server, '/api/session')).status, 401);
  });
});
