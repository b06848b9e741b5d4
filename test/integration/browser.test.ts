/**
 * The Background Task Manager page in headless Chromium (Debian's, driven by playwright-core),
 * against the real servers: sign in, add a task and watch WAITING -> STARTED -> COMPLETED,
 * cancel a scheduled one, delete a record and see a related record's quality level drop.
 * Then the Health view charts that work from PostgreSQL: runs completed and failed per hour by
 * method, follow-up lag per data source, durations, workers polling, quarantine and alerts.
 * SCREENSHOT_TO=docs/task-manager.png and HEALTH_SCREENSHOT_TO=docs/health.png save the pictures
 * the README shows.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import type pg from 'pg';
import { TaskClient } from '../../src/client/task-client.ts';
import type { RegistryClient } from '../../src/client/registry.ts';
import { startAdminServer, type AdminServer } from '../../src/http/server.ts';
import { seedRegistry, type SeedSummary } from '../../src/registry/seed.ts';
import { createTestDatabase, logger, settledTask, startTestWorker, testClient, testConfig, type TestDatabase, type TestWorker } from '../helpers.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const PASSWORD = 'browser test password';

describe('the Background Task Manager page in a browser', () => {
  let db: TestDatabase;
  let worker: TestWorker;
  let registry: RegistryClient;
  let server: AdminServer;
  let browser: Browser;
  let page: Page;
  let seeded: SeedSummary;

  before(async () => {
    assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: install Debian's chromium (.ci/run does)`);
    db = await createTestDatabase();
    seeded = await seedRegistry(db.pool, { records: 400, dataSources: 2, hubs: 2, hubSize: 60, seed: 17 });
    // Lag sampled often, and a quiet period long enough for a sample to see the deletion's queue.
    worker = await startTestWorker(db.pool, undefined, { METRICS_SAMPLE_EVERY: '100 milliseconds', FOLLOWUP_QUIET: '1 second' });
    registry = await testClient(worker.taskQueue);
    const config = testConfig({ HTTP_PORT: '0', ADMIN_PASSWORD: PASSWORD, TEMPORAL_TASK_QUEUE: worker.taskQueue });
    server = await startAdminServer({
      config,
      pool: db.pool,
      tasks: new TaskClient(registry.client, worker.taskQueue),
      registry,
      logger,
      temporalUiUrl: 'http://127.0.0.1:8233',
    });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--no-first-run',
        '--disable-sync',
      ],
    });
    page = await browser.newPage({ viewport: { width: 1500, height: 950 } });
    page.on('dialog', (d) => void d.accept()); // the delete confirmation
  });
  after(async () => {
    await browser?.close();
    await server?.close();
    await registry?.close();
    await worker?.stop();
    await db?.drop();
  });

  const row = (taskId: string) => page.locator(`tr[data-task-id="${taskId}"]`);

  it('signs in', async () => {
    await page.goto(`${server.url}/`);
    await page.locator('#login-form [name=user]').fill('admin');
    await page.locator('#login-form [name=password]').fill('not the password');
    await page.locator('#login-form button[type=submit]').click();
    await page.locator('#flash', { hasText: 'wrong user name or password' }).waitFor();
    await page.locator('#login-form [name=password]').fill(PASSWORD);
    await page.locator('#login-form button[type=submit]').click();
    await page.locator('#who-name', { hasText: 'admin (admin)' }).waitFor();
    await page.locator('[data-grid=queued] h2').waitFor();
  });

  it('adds a task and watches it go WAITING -> STARTED -> COMPLETED', async () => {
    // Hold a lock on the cache table so the task stays STARTED until we let go.
    const blocker: pg.PoolClient = await db.pool.connect();
    let released = false;
    const release = async () => {
      if (released) return;
      released = true;
      await blocker.query('COMMIT');
      blocker.release();
    };
    try {
      await blocker.query('BEGIN');
      await blocker.query('LOCK TABLE record_cache IN ACCESS EXCLUSIVE MODE');

      await page.locator('#add-task').click();
      await page.locator('#add-form [name=method]').selectOption('GENERATE_CACHE');
      await page.locator('#add-form [name=dataSourceKey]').selectOption(seeded.dataSources[0]!);
      await page.locator('#add-form [name=delay]').selectOption('custom');
      await page.locator('#add-form [name=customDelay]').fill('4 seconds');
      await page.locator('#add-form [name=logMessage]').fill('added in the browser');
      await page.locator('#add-form button[type=submit]').click();
      const flash = await page.locator('#flash', { hasText: 'added task:' }).textContent();
      const taskId = flash!.replace(/^added /, '').trim();

      await row(taskId).locator('td', { hasText: 'WAITING' }).waitFor({ timeout: 10_000 });
      assert.match((await row(taskId).textContent())!, /schedule/);
      await row(taskId).locator('td', { hasText: 'STARTED' }).waitFor({ timeout: 20_000 });
      // The detail dialog shows the running task, its inputs and a link to the Temporal Web UI.
      await row(taskId).locator('a.task-link').first().click();
      await page.locator('#task-dialog[data-status=STARTED]').waitFor();
      assert.match((await page.locator('#task-details').textContent())!, /added in the browser/);
      assert.equal(
        await page.locator('#task-details a[target=_blank]').getAttribute('href'),
        `http://127.0.0.1:8233/namespaces/default/workflows/${encodeURIComponent(taskId)}`,
      );
      await release();
      await page.locator('#task-dialog[data-status=COMPLETED]').waitFor({ timeout: 20_000 });
      assert.match((await page.locator('#task-log').textContent())!, /cache entries regenerated/);
      await page.locator('#task-dialog button[value=close]').click();
      await page.locator('[data-grid=completed]').locator(`tr[data-task-id="${taskId}"]`, { hasText: 'COMPLETED' }).waitFor({ timeout: 10_000 });
    } finally {
      await release();
    }
  });

  it('cancels a scheduled task', async () => {
    await page.locator('#add-task').click();
    await page.locator('#add-form [name=method]').selectOption('INDEX_RECORDS');
    await page.locator('#add-form [name=dataSourceKey]').selectOption(seeded.dataSources[1]!);
    await page.locator('#add-form [name=delay]').selectOption('1 hour');
    await page.locator('#add-form button[type=submit]').click();
    const taskId = (await page.locator('#flash', { hasText: 'added task:INDEX_RECORDS' }).textContent())!.replace(/^added /, '').trim();
    const waiting = page.locator('[data-grid=queued]').locator(`tr[data-task-id="${taskId}"]`);
    await waiting.locator('td', { hasText: 'WAITING' }).waitFor({ timeout: 10_000 });
    if (process.env.SCREENSHOT_TO) {
      fs.mkdirSync(path.dirname(process.env.SCREENSHOT_TO), { recursive: true });
      await page.screenshot({ path: process.env.SCREENSHOT_TO, fullPage: true });
    }
    await waiting.locator('button', { hasText: 'Cancel' }).click();
    await page.locator('[data-grid=completed]').locator(`tr[data-task-id="${taskId}"]`, { hasText: 'CANCELLED' }).waitFor({ timeout: 15_000 });
    await page.locator('[data-grid=queued]').locator(`tr[data-task-id="${taskId}"]`).waitFor({ state: 'detached', timeout: 15_000 });
  });

  it("deletes a record and sees a related record's quality level change", async () => {
    const hub = seeded.hubs.find((h) => h.class === 'activity')!;
    // A level-3 collection whose only related activity is the hub: without it, it drops to level 2.
    const { rows } = await db.pool.query<{ key: string }>(
      `SELECT c.key FROM registry_objects h, related_records(h.id, h.key) rr JOIN registry_objects c ON c.id = rr.related_id
        WHERE h.key = $1 AND c.class = 'collection' AND c.quality_level = 3
          AND NOT EXISTS (SELECT 1 FROM related_records(c.id, c.key) x WHERE x.related_class = 'activity' AND x.related_key <> $1)
        ORDER BY c.key LIMIT 1`,
      [hub.key],
    );
    assert.ok(rows[0], 'the seed has a collection that depends on the hub for its level');
    const related = rows[0].key;
    const level = page.locator('#record-fields dd[data-field="Quality level"]');

    await page.locator('#nav a[data-view=records]').click();
    await page.locator('#record-filters [name=q]').fill(related);
    await page.locator('#record-filters button[type=submit]').click();
    await page.locator(`#records tr[data-key="${related}"] a`).click();
    await level.filter({ hasText: /^3$/ }).waitFor();

    await page.locator(`#record-relations a`, { hasText: hub.key }).click();
    await page.locator('#record-fields dd[data-field=Key]', { hasText: hub.key }).waitFor();
    await page.locator('#delete-record').click();
    await page.locator('#deletion-text', { hasText: /^Deleted in \d+ ms/ }).waitFor({ timeout: 10_000 });
    await page.locator('#deletion[data-done=true]').waitFor({ timeout: 60_000 });

    await page.goto(`${server.url}/#/records/${encodeURIComponent(related)}`);
    await level.filter({ hasText: /^2$/ }).waitFor({ timeout: 10_000 });
    assert.match((await page.locator('#record-quality').textContent())!, /A collection should be related to an activity/);
  });

  it('lists a quarantined record on the data sources page and releases it with Retry', async () => {
    const { rows } = await db.pool.query<{ id: number; key: string; data_source_id: number }>(
      "SELECT id, key, data_source_id FROM registry_objects WHERE class = 'party' ORDER BY id LIMIT 1",
    );
    const record = rows[0]!;
    await db.pool.query(
      "INSERT INTO quarantined_records (record_id, record_key, data_source_id, found_by, error, sqlstate) VALUES ($1, $2, $3, 'browser-test', 'string is too long for tsvector', '54000')",
      [record.id, record.key, record.data_source_id],
    );
    await page.locator('#nav a[data-view=data-sources]').click();
    const row = page.locator(`#quarantine tr[data-key="${record.key}"]`);
    await row.waitFor({ timeout: 10_000 });
    assert.match((await row.textContent())!, /string is too long for tsvector/);
    assert.match((await page.locator('#quarantine-summary').textContent())!, /^1 record in quarantine/);
    await page.locator('#quarantine-retry').click();
    await row.waitFor({ state: 'detached', timeout: 10_000 });
    assert.equal(await page.locator('#quarantine-summary').textContent(), 'No record is in quarantine.');
  });

  it('shows health at a glance: the last 24 hours charted, workers, queues, quarantine and alerts', async () => {
    const tasks = new TaskClient(registry.client, worker.taskQueue);
    const failing = await tasks.addNewTask('GENERATE_CACHE', { dataSourceKey: 'no-such-data-source' });
    assert.equal((await settledTask(tasks, failing)).status, 'FAILED');

    await page.locator('#nav a[data-view=health]').click();
    const legend = (chart: string) => page.locator(`#${chart} .u-legend`);
    await legend('chart-completed').filter({ hasText: 'GENERATE_CACHE' }).waitFor({ timeout: 20_000 });
    await legend('chart-failed').filter({ hasText: 'GENERATE_CACHE' }).waitFor();
    await legend('chart-durations').filter({ hasText: 'GENERATE_CACHE' }).waitFor();
    // The deletion of the test before queued a follow-up in the hub's data source: sampled, charted.
    const hubSource = seeded.hubs.find((h) => h.class === 'activity')!.key.split('/')[0]!;
    await legend('chart-lag').filter({ hasText: hubSource }).waitFor();
    for (const chart of ['chart-completed', 'chart-failed', 'chart-lag', 'chart-durations'])
      assert.equal(await page.locator(`#${chart} canvas`).count(), 1, chart);
    // The cancelled run is neither completed nor failed; the failed one counts once.
    const failedCount = await page.evaluate(() =>
      fetch('/api/health/details')
        .then((r) => r.json())
        .then((h) => h.tasks.failed.GENERATE_CACHE.reduce((a: number, b: number) => a + b, 0)),
    );
    assert.equal(failedCount, 1);

    const workers = (await page.locator('#health-workers').textContent())!;
    assert.match(workers, new RegExp(`${worker.taskQueue} \\(workflows\\): 1 worker`));
    assert.match(workers, new RegExp(`${worker.taskQueue}-runs \\(activities\\): 1 worker`));
    assert.match((await page.locator('#health-backlog').textContent())!, /every follow-up is done/);
    assert.match((await page.locator('#health-quarantine').textContent())!, /none/);
    assert.match((await page.locator('#health-alerts').textContent())!, /Prometheus is not configured/);
    if (process.env.HEALTH_SCREENSHOT_TO) {
      fs.mkdirSync(path.dirname(process.env.HEALTH_SCREENSHOT_TO), { recursive: true });
      await page.screenshot({ path: process.env.HEALTH_SCREENSHOT_TO, fullPage: true });
    }
  });
});
