/**
 * Derived state is judged fresh by the inputs it was computed from: right after maintenance
 * another run finds nothing stale; a re-harvest that changes nothing queues no repair; a changed
 * relation or a related record's new title is detected, even when made behind the registry's back.
 * The maintenance reads only marked records: before every run, each record stale by the full
 * comparison must be marked (or have an open invalidation), and after it the marks are gone.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import type { RegistryClient } from '../../src/client/registry.ts';
import { TaskClient } from '../../src/client/task-client.ts';
import { seedRegistry, type SeedSummary } from '../../src/registry/seed.ts';
import { scanMarkedRecords, STALE_RECORDS_EVERYWHERE } from '../../src/registry/stale-marks.ts';
import { TASK_LIMITS } from '../../src/taskmgr/input.ts';
import type { HarvestedRecord } from '../../src/shared.ts';
import {
  assertDerivedStateIsCurrent,
  createTestDatabase,
  startTestWorker,
  temporalAddress,
  testClient,
  type TestDatabase,
  type TestWorker,
  settledTask,
} from '../helpers.ts';

describe('freshness of derived state', () => {
  let db: TestDatabase;
  let worker: TestWorker;
  let registry: RegistryClient;
  let tasks: TaskClient;
  let seeded: SeedSummary;

  before(async () => {
    db = await createTestDatabase();
    seeded = await seedRegistry(db.pool, { records: 300, dataSources: 2, hubs: 1, hubSize: 30, seed: 41 });
    worker = await startTestWorker(db.pool);
    registry = await testClient(worker.taskQueue, { batchSize: 50, coalesce: { quietMs: 100, maxWaitMs: 1000 } });
    tasks = new TaskClient(new Client({ connection: await Connection.connect({ address: temporalAddress() }) }), worker.taskQueue, { pool: db.pool });
  });
  after(async () => {
    await tasks?.close();
    await registry?.close();
    await worker?.stop();
    await db?.drop();
  });

  const settled = (id: string) => settledTask(tasks, id, 60_000);

  const markCount = async () => Number((await db.pool.query('SELECT count(*) AS n FROM derived_stale_marks')).rows[0].n);

  /** Every record stale by the full comparison is one the maintenance will read. */
  const assertMarksCoverStale = async () => {
    const { rows: stale } = await db.pool.query<{ key: string }>(STALE_RECORDS_EVERYWHERE);
    const { rows: unmarked } = await db.pool.query<{ key: string }>(
      `SELECT ro.key FROM registry_objects ro
        WHERE ro.key = ANY($1::text[])
          AND NOT EXISTS (SELECT 1 FROM derived_stale_marks m WHERE m.record_id = ro.id)
          AND NOT EXISTS (SELECT 1 FROM derived_invalidations di WHERE di.record_id = ro.id)`,
      [stale.map((r) => r.key)],
    );
    assert.deepEqual(unmarked, [], 'stale records without a mark');
  };

  /** Runs maintenance, waits for the repairs it queued, returns how many records it found stale. */
  const maintain = async (): Promise<number> => {
    await assertMarksCoverStale();
    const t = await settled(await tasks.addNewTask('HOURLY_REGISTRY_MAINTENANCE'));
    assert.equal(t.status, 'COMPLETED', t.error);
    const out = t.output as { staleRecords: number; repairTasks: string[] };
    for (const id of out.repairTasks) assert.equal((await settled(id)).status, 'COMPLETED');
    return out.staleRecords;
  };

  it('right after a maintenance run, another finds no stale record', async () => {
    // Stale to begin with: three records retitled by hand (they and their related records).
    await db.pool.query("UPDATE registry_objects SET title = title || ' (again)' WHERE id IN (SELECT id FROM registry_objects ORDER BY id LIMIT 3)");
    assert.ok((await maintain()) >= 3);
    assert.equal(await maintain(), 0);
    assert.equal(await markCount(), 0, 'a converged registry keeps no marks: the next run reads nothing');
  });

  it('the seed leaves no marks; a record written, retitled or stripped of its cache is marked', async () => {
    const fresh = await seedRegistry(db.pool, { records: 50, dataSources: 1, seed: 47, prefix: 'marks' });
    assert.equal(await markCount(), 0);
    const [a, b, c] = (
      await db.pool.query<{ id: number }>('SELECT id FROM registry_objects WHERE key LIKE $1 ORDER BY id LIMIT 3', [`${fresh.dataSources[0]}/%`])
    ).rows;
    await db.pool.query("UPDATE registry_objects SET title = title || ' (retitled)' WHERE id = $1", [a!.id]);
    await db.pool.query('UPDATE registry_objects SET quality_report = quality_report WHERE id = $1', [b!.id]);
    await db.pool.query('DELETE FROM record_cache WHERE record_id = $1', [c!.id]);
    const marked = (await db.pool.query<{ record_id: number }>('SELECT record_id FROM derived_stale_marks ORDER BY record_id')).rows.map((r) =>
      Number(r.record_id),
    );
    assert.deepEqual(marked, [Number(a!.id), Number(c!.id)], 'a change of no input marks nothing');
    const { stale, uncachedIds } = await scanMarkedRecords(db.pool);
    assert.ok(stale.some((r) => Number(r.id) === Number(a!.id)));
    assert.deepEqual(uncachedIds, [Number(c!.id)]);
    assert.ok((await maintain()) >= 1);
    assert.equal(await maintain(), 0);
    assert.equal(await markCount(), 0);
  });

  it('a mark held by a writer while the maintenance scans stays, and the next scan finds its record', async () => {
    const { rows } = await db.pool.query<{ id: number }>("SELECT id FROM registry_objects WHERE key NOT LIKE '%hub%' ORDER BY id LIMIT 1");
    const id = Number(rows[0]!.id);
    await db.pool.query("UPDATE registry_objects SET title = title || ' (1)' WHERE id = $1", [id]);
    assert.ok((await maintain()) >= 1);
    assert.equal(await maintain(), 0);
    // A fresh record's mark, then a writer changing the record again, uncommitted while the scan runs.
    await db.pool.query('INSERT INTO derived_stale_marks (record_id) VALUES ($1)', [id]);
    const writer = await db.pool.connect();
    try {
      await writer.query('BEGIN');
      await writer.query("UPDATE registry_objects SET title = title || ' (2)' WHERE id = $1", [id]);
      const during = await scanMarkedRecords(db.pool);
      assert.ok(!during.stale.some((r) => Number(r.id) === id), 'the scan sees the committed, fresh record');
      await writer.query('COMMIT');
    } finally {
      writer.release();
    }
    assert.equal(await markCount(), 1, 'the writer\u2019s mark stayed');
    const after = await scanMarkedRecords(db.pool);
    assert.ok(after.stale.some((r) => Number(r.id) === id));
    assert.ok((await maintain()) >= 1);
    assert.equal(await maintain(), 0);
  });

  it('repairs more stale records than one task may name, in chunks of the task limit, and converges', async () => {
    // 10,001 stale records in one data source: one repair chain of 10,000 keys and one of 1.
    const big = await seedRegistry(db.pool, { records: TASK_LIMITS.maxKeys + 1, dataSources: 1, seed: 43, prefix: 'stale-many' });
    const dataSourceKey = big.dataSources[0]!;
    await db.pool.query(
      'INSERT INTO derived_invalidations (record_id) SELECT ro.id FROM registry_objects ro JOIN data_sources ds ON ds.id = ro.data_source_id WHERE ds.key = $1',
      [dataSourceKey],
    );
    const t = await settledTask(tasks, await tasks.addNewTask('HOURLY_REGISTRY_MAINTENANCE'), 120_000);
    assert.equal(t.status, 'COMPLETED', t.error);
    const out = t.output as { staleRecords: number; repairTasks: string[] };
    assert.equal(out.staleRecords, TASK_LIMITS.maxKeys + 1);
    const repairs = await Promise.all(out.repairTasks.map((id) => settledTask(tasks, id, 180_000)));
    assert.deepEqual(new Set(repairs.map((r) => r.status)), new Set(['COMPLETED']));
    const checks = repairs.filter((r) => r.method === 'RUN_QUALITY_CHECK' && r.input.dataSourceKey === dataSourceKey);
    assert.deepEqual(
      checks.map((r) => r.keyCount).sort((a, b) => b! - a!),
      [TASK_LIMITS.maxKeys, 1],
    );
    assert.equal(await maintain(), 0);
  });

  it('re-harvesting unchanged records leaves nothing stale', async () => {
    const { rows } = await db.pool.query(
      `SELECT ro.key, ro.class, ro.type, ro.group_name, ro.status, ro.title, ro.description, ro.rights, ro.access_policy,
              ro.location_address, ro.electronic_address, ro.identifiers, ro.subjects, ro.dates, ro.spatial_coverage,
              ro.temporal_coverage, ro.citation_info,
              coalesce((SELECT json_agg(json_build_object('key', r.to_key, 'type', r.relation_type) ORDER BY r.to_key, r.relation_type) FROM relations r WHERE r.from_id = ro.id), '[]') AS relations
         FROM registry_objects ro JOIN data_sources ds ON ds.id = ro.data_source_id
        WHERE ds.key = $1 AND ro.gold_standard = false ORDER BY ro.id LIMIT 40`,
      [seeded.dataSources[0]],
    );
    const records: HarvestedRecord[] = rows.map((r) => ({
      key: r.key,
      class: r.class,
      type: r.type,
      group: r.group_name,
      status: r.status,
      title: r.title,
      description: r.description,
      rights: r.rights,
      accessPolicy: r.access_policy,
      locationAddress: r.location_address,
      electronicAddress: r.electronic_address,
      identifiers: r.identifiers,
      subjects: r.subjects,
      dates: r.dates,
      spatialCoverage: r.spatial_coverage,
      temporalCoverage: r.temporal_coverage,
      citationInfo: r.citation_info,
      relations: r.relations,
    }));
    const versions = async () =>
      (await db.pool.query('SELECT sum(inputs_version)::text AS v, (SELECT count(*) FROM derived_invalidations)::int AS n FROM registry_objects')).rows[0];
    const before = await versions();
    const op = await registry.importRecords(seeded.dataSources[0]!, records);
    assert.equal(op.changed, records.length);
    await registry.awaitOperation(op.workflowId);
    assert.deepEqual(await versions(), before, 'no input changed, so no version moved');
    assert.equal(await maintain(), 0);
  });

  it('a relation added behind the registry\u2019s back makes both ends stale; the repair makes them current', async () => {
    const [a, b] = (await db.pool.query<{ id: number }>("SELECT id FROM registry_objects WHERE key NOT LIKE '%hub%' ORDER BY id DESC LIMIT 2")).rows;
    const bKey = (await db.pool.query('SELECT key FROM registry_objects WHERE id = $1', [b!.id])).rows[0].key;
    await db.pool.query("INSERT INTO relations (from_id, to_key, relation_type) VALUES ($1, $2, 'isPartOf')", [a!.id, bKey]);
    assert.equal(await maintain(), 2);
    assert.equal(await maintain(), 0);
    await assertDerivedStateIsCurrent(db.pool);
  });

  it('a relation edited in place makes its ends before and after the edit stale; one removed makes both ends stale', async () => {
    const [a, b, c] = (
      await db.pool.query<{ id: number; key: string }>("SELECT id, key FROM registry_objects WHERE key NOT LIKE '%hub%' ORDER BY id DESC OFFSET 2 LIMIT 3")
    ).rows;
    await db.pool.query("INSERT INTO relations (from_id, to_key, relation_type) VALUES ($1, $2, 'hasAssociationWith')", [a!.id, b!.key]);
    assert.equal(await maintain(), 2);
    // Retargeted from b to c: a, b (loses it) and c (gains it).
    await db.pool.query("UPDATE relations SET to_key = $3 WHERE from_id = $1 AND to_key = $2 AND relation_type = 'hasAssociationWith'", [
      a!.id,
      b!.key,
      c!.key,
    ]);
    assert.equal(await maintain(), 3);
    await db.pool.query("UPDATE relations SET relation_type = 'isOutputOf' WHERE from_id = $1 AND to_key = $2", [a!.id, c!.key]);
    assert.equal(await maintain(), 2);
    await db.pool.query('DELETE FROM relations WHERE from_id = $1 AND to_key = $2', [a!.id, c!.key]);
    assert.equal(await maintain(), 2);
    assert.equal(await maintain(), 0);
    await assertDerivedStateIsCurrent(db.pool);
  });

  it('a record retitled by hand makes it and its related records stale', async () => {
    const hub = seeded.hubs[0]!;
    await db.pool.query("UPDATE registry_objects SET title = title || ' (renamed)' WHERE key = $1", [hub.key]);
    assert.equal(await maintain(), 1 + hub.related);
    assert.equal(await maintain(), 0);
    await assertDerivedStateIsCurrent(db.pool);
  });
});
