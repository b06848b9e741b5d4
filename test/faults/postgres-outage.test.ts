/**
 * PostgreSQL stopped for 30 seconds in the middle of a follow-up and of tasks, then started again:
 * the work waits (activities retry with backoff capped at 30 s; a task module that loses its
 * connection waits for the database and is retried) and completes, and no task FAILS.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TaskClient } from '../../src/client/task-client.ts';
import { createPool, type Pool } from '../../src/db/pool.ts';
import { migrate } from '../../src/db/migrate.ts';
import { startEmbeddedPostgres, type EmbeddedDb } from '../../src/dev/embedded-postgres.ts';
import { freePort } from '../../src/dev/temporal-dev-server.ts';
import { seedRegistry, type SeedSummary } from '../../src/registry/seed.ts';
import { assertDerivedStateIsCurrent, eventually, logger, startTestWorker, testClient, uniqueName, type TestWorker } from '../helpers.ts';

const OUTAGE_MS = Number(process.env.PG_OUTAGE_MS ?? 30_000);

describe('PostgreSQL stopped for 30 seconds and started again', () => {
  let dir: string;
  let port: number;
  let pg: EmbeddedDb;
  let pool: Pool;
  let worker: TestWorker;
  let seeded: SeedSummary;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'registry-taskmgr-outage-'));
    fs.chmodSync(dir, 0o777); // as root, PostgreSQL runs as `postgres`
    port = await freePort();
    pg = await startEmbeddedPostgres({ dir: path.join(dir, 'data'), port, logger });
    await migrate(pg.url);
    pool = createPool(pg.url, { logger });
    seeded = await seedRegistry(pool, { records: 4000, dataSources: 2, hubs: 1, hubSize: 2500, seed: 47 });
    worker = await startTestWorker(pool, uniqueName('registry-tasks-outage'));
  });
  after(async () => {
    await worker?.stop();
    await pool?.end();
    await pg?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('the work waits and completes; no task fails because of the outage', { timeout: 400_000 }, async () => {
    const client = await testClient(worker.taskQueue, { batchSize: 25, concurrency: 2, coalesce: { quietMs: 100, maxWaitMs: 500 } });
    const tasks = new TaskClient(client.client, worker.taskQueue);
    try {
      const hub = seeded.hubs[0]!.key;
      const answered = await client.deleteRecord(hub);
      // A task that runs across the outage's start, and one whose time comes during it.
      const running = await tasks.addNewTask('RUN_QUALITY_CHECK', { dataSourceKey: seeded.dataSources[1] });
      const scheduled = await tasks.addNewTask('GENERATE_CACHE', { dataSourceKey: seeded.dataSources[0], scheduledFor: '5 seconds' });
      await eventually(async () => (await client.deletionProgress(hub)).phase === 'following-up', 30_000, 100);

      const open = await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM registry_operations WHERE completed_at IS NULL');
      assert.ok(open.rows[0]!.n > 0, 'the follow-up is still under way when PostgreSQL stops');
      await pg.stop();
      const stoppedAt = Date.now();
      await new Promise((r) => setTimeout(r, OUTAGE_MS));
      pg = await startEmbeddedPostgres({ dir: path.join(dir, 'data'), port, logger });

      const result = await client.awaitDeletion(hub);
      assert.equal(answered.plannedByRound, true);
      assert.ok(result.affected > 2000, `${result.affected} related records`);
      const settled = async (id: string) =>
        eventually(
          async () => {
            const t = await tasks.getTask(id);
            return ['COMPLETED', 'FAILED', 'CANCELLED'].includes(t.status) ? t : undefined;
          },
          120_000,
          500,
        );
      const [r, s] = await Promise.all([settled(running), settled(scheduled)]);
      assert.equal(r.status, 'COMPLETED', r.error);
      assert.equal(s.status, 'COMPLETED', s.error);
      assert.ok(Date.parse(s.completedAt!) > stoppedAt, 'the scheduled task ran after the outage');
      assert.equal((await tasks.listTasks({ status: 'FAILED' })).tasks.length, 0, 'no task failed');
      assert.equal((await pool.query('SELECT count(*)::int AS n FROM registry_operations WHERE completed_at IS NULL')).rows[0].n, 0);
      await assertDerivedStateIsCurrent(pool);
    } finally {
      await client.close();
    }
  });
});
