/**
 * Five people watching the task grids: five signed-in browsers on the page as it is, and five
 * scripts polling the three lists ten times as often as the page does (every 300 ms instead of
 * 3 s): every answer is right and none is throttled. Under
 * `npm run test:cluster` the server's default 10 visibility requests per second per frontend
 * apply; identical lists share one answer for 2 s (src/http/shared-answers.ts), and a change
 * through the server shows at once.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { chromium } from 'playwright-core';
import { after, before, describe, it } from 'node:test';
import { TaskClient } from '../../src/client/task-client.ts';
import type { RegistryClient } from '../../src/client/registry.ts';
import { startAdminServer, type AdminServer } from '../../src/http/server.ts';
import { createTestDatabase, eventually, logger, startTestWorker, testClient, testConfig, type TestDatabase, type TestWorker } from '../helpers.ts';

const ADMIN = { user: 'admin', password: 'five people are watching' };
const GRIDS = ['WAITING,STARTED', 'COMPLETED,CANCELLED', 'FAILED'];

describe('five people watching the task grids', () => {
  let db: TestDatabase;
  let worker: TestWorker;
  let registry: RegistryClient;
  let server: AdminServer;
  let upstream = 0;

  before(async () => {
    db = await createTestDatabase();
    worker = await startTestWorker(db.pool);
    registry = await testClient(worker.taskQueue);
    const tasks = new TaskClient(registry.client, worker.taskQueue, { pool: db.pool });
    const list = tasks.listTasks.bind(tasks);
    tasks.listTasks = (filter) => {
      upstream++;
      return list(filter);
    };
    const config = testConfig({ HTTP_PORT: '0', ADMIN_PASSWORD: ADMIN.password, TEMPORAL_TASK_QUEUE: worker.taskQueue });
    server = await startAdminServer({ config, pool: db.pool, tasks, registry, logger });
    for (let i = 0; i < 3; i++) await tasks.addNewTask('GENERATE_CACHE', { dataSourceKey: `watched-${i}`, scheduledFor: '1 hour' });
  });
  after(async () => {
    await server?.close();
    await registry?.close();
    await worker?.stop();
    await db?.drop();
  });

  it('five signed-in browsers watch the grids for 12 s: every list request answers 200, each grid shows the queued tasks', { timeout: 120_000 }, async () => {
    const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
    assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: install Debian's chromium (.ci/run does)`);
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run', '--disable-sync'],
    });
    try {
      const refused: string[] = [];
      let listRequests = 0;
      const pages = await Promise.all(
        Array.from({ length: 5 }, async () => {
          const page = await (await browser.newContext()).newPage();
          page.on('response', (r) => {
            if (!r.url().includes('/api/tasks')) return;
            listRequests++;
            if (r.status() >= 400) refused.push(`${r.status()} ${r.url()}`);
          });
          await page.goto(`${server.url}/`);
          await page.locator('#login-form [name=user]').fill(ADMIN.user);
          await page.locator('#login-form [name=password]').fill(ADMIN.password);
          await page.locator('#login-form button[type=submit]').click();
          await page.locator('[data-grid=queued] tr[data-task-id]').first().waitFor({ timeout: 20_000 });
          return page;
        }),
      );
      upstream = 0;
      const requestsBefore = listRequests;
      await new Promise((r) => setTimeout(r, 12_000));
      assert.deepEqual(refused, [], 'no list request was refused (throttled or otherwise)');
      assert.ok(listRequests - requestsBefore >= 5 * 3 * 3, `the browsers polled: ${listRequests - requestsBefore} list requests`);
      for (const page of pages) assert.equal(await page.locator('[data-grid=queued] tr[data-task-id]').count(), 3, 'each grid shows the three queued tasks');
      assert.ok(upstream <= 3 * 8, `${upstream} list requests reached Temporal for ${listRequests - requestsBefore} from the browsers`);
    } finally {
      await browser.close();
    }
  });

  it('every poll answers 200 with the right tasks; Temporal is asked a few times, not once per poll', { timeout: 120_000 }, async () => {
    const sessions = await Promise.all(
      Array.from({ length: 5 }, async () => {
        const res = await fetch(`${server.url}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(ADMIN) });
        return { cookie: res.headers.get('set-cookie')!.split(';')[0]!, csrf: ((await res.json()) as { csrfToken: string }).csrfToken };
      }),
    );
    await eventually(async () => {
      const res = await fetch(`${server.url}/api/tasks?status=WAITING,STARTED&pageSize=20`, { headers: { cookie: sessions[0]!.cookie } });
      return ((await res.json()) as { tasks: unknown[] }).tasks.length === 3;
    });
    upstream = 0;
    const failures: string[] = [];
    let polls = 0;
    const until = Date.now() + 6000;
    await Promise.all(
      sessions.map(async ({ cookie }) => {
        while (Date.now() < until) {
          await Promise.all(
            GRIDS.map(async (status) => {
              const res = await fetch(`${server.url}/api/tasks?status=${status}&pageSize=20`, { headers: { cookie } });
              polls++;
              const body = (await res.json()) as { tasks?: { status: string }[]; error?: string };
              if (res.status !== 200) failures.push(`${res.status} ${body.error}`);
              else if (status.startsWith('WAITING') && body.tasks!.length !== 3) failures.push(`the queued grid shows ${body.tasks!.length} tasks, not 3`);
            }),
          );
          await new Promise((r) => setTimeout(r, 300));
        }
      }),
    );
    assert.deepEqual(failures.slice(0, 5), []);
    assert.ok(polls >= 150, `${polls} polls`);
    assert.ok(upstream <= 3 * 5, `${upstream} list requests reached Temporal for ${polls} polls`);

    // A change through the server is seen by the next poll, not 2 s later.
    const first = (await (await fetch(`${server.url}/api/tasks?status=WAITING,STARTED&pageSize=20`, { headers: { cookie: sessions[0]!.cookie } })).json()) as {
      tasks: { taskId: string }[];
    };
    const cancel = await fetch(`${server.url}/api/tasks/${encodeURIComponent(first.tasks[0]!.taskId)}/cancel`, {
      method: 'POST',
      headers: { cookie: sessions[0]!.cookie, 'x-csrf-token': sessions[0]!.csrf },
    });
    assert.equal(cancel.status, 200, await cancel.text());
    await eventually(
      async () => {
        const res = await fetch(`${server.url}/api/tasks?status=WAITING,STARTED&pageSize=20`, { headers: { cookie: sessions[1]!.cookie } });
        return ((await res.json()) as { tasks: unknown[] }).tasks.length === 2;
      },
      10_000,
      100,
    );
  });
});
