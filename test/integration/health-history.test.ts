/**
 * The Health view's history in PostgreSQL at its edges: hourly buckets of run ends (a repeated end
 * counts once, a session time zone with a half-hour offset cuts the same hours), the lag chart's
 * data sources beyond the eight most behind shown as one line, two days kept and no more, and
 * an unreachable Prometheus reported with the reason.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { recordOutcome } from '../../src/taskmgr/task-store.ts';
import { hourlyTaskFigures, lagHistory, LAG_LINES, pruneHealthHistory, recordLagSample } from '../../src/registry/health-history.ts';
import { alertsState } from '../../src/metrics/prometheus-alerts.ts';
import { freePort } from '../../src/dev/temporal-dev-server.ts';
import { createTestDatabase, type TestDatabase } from '../helpers.ts';

const hoursAgo = (h: number) => new Date(Date.now() - h * 3600_000).toISOString();

describe('health history', () => {
  let db: TestDatabase;
  before(async () => (db = await createTestDatabase()));
  after(async () => db?.drop());

  it('counts run ends per method and hour, once each, and keeps two days', async () => {
    const end = (id: string, iteration: number, status: string, h: number, durationMs: number) =>
      recordOutcome(db.pool, id, { status }, false, { iteration, method: 'INDEX_RECORDS', finishedAt: hoursAgo(h), durationMs });
    await end('task:a', 0, 'COMPLETED', 0, 1000);
    await end('task:a', 0, 'COMPLETED', 0, 1000); // a retried activity repeats the same end
    await end('task:a', 1, 'COMPLETED', 0, 3000); // the next run of a recurring task
    await end('task:b', 0, 'FAILED', 0, 500);
    await end('task:c', 0, 'COMPLETED', 5, 2000);
    await end('task:old', 0, 'COMPLETED', 30, 2000); // beyond the chart's 24 hours
    const figures = await hourlyTaskFigures(db.pool);
    assert.equal(figures.hours.length, 24);
    const completed = figures.completed.INDEX_RECORDS!;
    assert.equal(completed[23], 2);
    assert.equal(completed[18], 1);
    assert.equal(
      completed.reduce((a, b) => a + b, 0),
      3,
    );
    assert.equal(figures.failed.INDEX_RECORDS![23], 1);
    // p95 of 1 s, 3 s and 0.5 s (all the hour's runs)
    assert.ok(Math.abs(figures.durationP95.INDEX_RECORDS![23]! - 2.8) < 0.01);
    assert.equal(figures.durationP95.INDEX_RECORDS![0], null);

    // A session in a zone with a half-hour offset cuts the same (UTC) hours.
    const client = await db.pool.connect();
    try {
      await client.query("SET TIME ZONE 'Asia/Kolkata'");
      assert.deepEqual(await hourlyTaskFigures(client), figures);
    } finally {
      await client.query('RESET TIME ZONE');
      client.release();
    }

    // Two days kept: an end older than that goes at the next maintenance run's pruning.
    await end('task:ancient', 0, 'COMPLETED', 49, 1);
    await end('task:d', 0, 'COMPLETED', 0, 1);
    await pruneHealthHistory(db.pool);
    const { rows } = await db.pool.query<{ task_id: string }>('SELECT task_id FROM task_run_outcomes ORDER BY task_id');
    assert.deepEqual(
      rows.map((r) => r.task_id),
      ['task:a', 'task:a', 'task:b', 'task:c', 'task:d', 'task:old'],
    );
  });

  it('charts the eight data sources most behind by name and shows the rest as one line, their highest', async () => {
    const backlog = Array.from({ length: 12 }, (_, i) => ({ dataSourceKey: `ds-${String(i).padStart(2, '0')}`, queued: i + 1, oldestSeconds: (i + 1) * 10 }));
    await recordLagSample(db.pool, backlog);
    // A second worker's sample in the same minute: the higher figure stays.
    await recordLagSample(db.pool, [{ dataSourceKey: 'ds-00', queued: 1, oldestSeconds: 500 }]);
    await recordLagSample(db.pool, [{ dataSourceKey: 'ds-01', queued: 1, oldestSeconds: 1 }]);
    const history = await lagHistory(db.pool);
    assert.equal(history.minutes.length, 24 * 60);
    const lines = Object.keys(history.lagSeconds).sort();
    assert.equal(lines.length, LAG_LINES + 1);
    assert.ok(lines.includes('other data sources'));
    const last = (k: string) => history.lagSeconds[k]!.at(-1);
    assert.equal(last('ds-00'), 500);
    assert.equal(last('ds-11'), 120);
    assert.equal(last('other data sources'), 50); // the highest of ds-01 (20 s: a later, lower sample does not lower it) .. ds-04
    assert.ok(!lines.includes('ds-01'));

    // Two days kept.
    await db.pool.query(`INSERT INTO followup_lag_samples VALUES (now() - interval '3 days', 'ds-old', 1, 1)`);
    await pruneHealthHistory(db.pool);
    const { rows } = await db.pool.query(`SELECT 1 FROM followup_lag_samples WHERE data_source_key = 'ds-old'`);
    assert.equal(rows.length, 0);
  });

  it('says why the alerts cannot be read from an unreachable Prometheus', async () => {
    assert.deepEqual(await alertsState(undefined), { configured: false });
    const url = `http://127.0.0.1:${await freePort()}`;
    const state = await alertsState(url);
    assert.ok(state.configured && 'error' in state && /fetch failed|ECONNREFUSED/.test(state.error), JSON.stringify(state));
  });
});
