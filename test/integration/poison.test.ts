/**
 * Poison input never blocks anything: what can be checked up front is refused with the record and
 * field named; data PostgreSQL refuses fails at once (no endless retry); a record whose derived
 * state PostgreSQL refuses is quarantined while the rest of its batch, and its data source's later
 * follow-ups, go on; after a fix, a retry releases it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { DataRejectedError, InvalidInputError, type RegistryClient } from '../../src/client/registry.ts';
import { TaskClient } from '../../src/client/task-client.ts';
import { refreshDerived } from '../../src/registry/derived.ts';
import { listQuarantined, retryQuarantined } from '../../src/registry/quarantine.ts';
import { seedRegistry, type SeedSummary } from '../../src/registry/seed.ts';
import { MAX_IMPORT_BATCH, MAX_IMPORT_BYTES } from '../../src/shared.ts';
import {
  assertDerivedStateIsCurrent,
  createTestDatabase,
  eventually,
  settledTask,
  snapshot,
  startTestWorker,
  temporalAddress,
  testClient,
  type TestDatabase,
  type TestWorker,
} from '../helpers.ts';

/** A description whose full-text document is over PostgreSQL's 1 MB tsvector limit (SQLSTATE 54000). */
const POISON = "(SELECT string_agg('w' || g, ' ') FROM generate_series(1, 200000) g)";

describe('poison input', () => {
  let db: TestDatabase;
  let worker: TestWorker;
  let client: RegistryClient;
  let tasks: TaskClient;
  let seeded: SeedSummary;

  before(async () => {
    db = await createTestDatabase();
    seeded = await seedRegistry(db.pool, { records: 400, dataSources: 2, hubs: 1, hubSize: 40, seed: 21 });
    worker = await startTestWorker(db.pool);
    client = await testClient(worker.taskQueue, { batchSize: 10, coalesce: { quietMs: 100, maxWaitMs: 1000 } });
    tasks = new TaskClient(new Client({ connection: await Connection.connect({ address: temporalAddress() }) }), worker.taskQueue, { pool: db.pool });
  });
  after(async () => {
    await tasks?.close();
    await client?.close();
    await worker?.stop();
    await db?.drop();
  });

  const record = (key: string, extra: Record<string, unknown> = {}): { key: string; class: 'collection'; title: string; description?: string } => ({
    key,
    class: 'collection' as const,
    title: 'A title',
    ...extra,
  });

  it('an import with a key twice, a NUL byte or an oversize field is refused up front with the record and field named; nothing changes', async () => {
    const ds = seeded.dataSources[0]!;
    const before = await snapshot(db.pool);
    const cases: [unknown[], RegExp][] = [
      [[record('p/1'), record('p/2'), record('p/1')], /records\[2\]\.key "p\/1" repeats records\[0\]\.key/],
      [[record('p/1', { title: 'bad\u0000title' })], /records\[0\]\.title contains a NUL character/],
      [[record('p/1', { subjects: ['ok', 'x\u0000'] })], /records\[0\]\.subjects\[1\] contains a NUL character/],
      [[record('p/1', { description: 'x'.repeat(65_537) })], /records\[0\]\.description is 65537 characters long; at most 65536/],
      [[record('p/1', { relations: [{ key: 'p/2', type: 'has\u0000Part' }] })], /relations\[0\]\.type contains a NUL character/],
      [Array.from({ length: 900 }, (_, i) => record(`p/${i}`, { description: 'd'.repeat(2000) })), /records take \d+ bytes; at most 1048576 per import batch/],
    ];
    for (const [records, message] of cases) {
      await assert.rejects(
        client.importRecords(ds, records as never),
        (err: Error) => err instanceof InvalidInputError && message.test(err.message),
        String(message),
      );
    }
    assert.deepEqual(await snapshot(db.pool), before);
  });

  it(
    'the largest import batch (1,000 records, 1 MB of JSON) imports and is followed up; one record or one byte more is refused',
    { timeout: 120_000 },
    async () => {
      const ds = seeded.dataSources[0]!;
      const batch = (description: (i: number) => string) =>
        Array.from({ length: MAX_IMPORT_BATCH }, (_, i) => record(`${ds}/collection/big-${i}`, { description: description(i) }));
      const bytes = (records: unknown[]) => Buffer.byteLength(JSON.stringify(records));
      // Every record's description as long as the byte budget allows, the last one taking the rest.
      const spare = MAX_IMPORT_BYTES - bytes(batch(() => ''));
      const each = Math.floor(spare / MAX_IMPORT_BATCH);
      const largest = batch((i) => 'd'.repeat(i === MAX_IMPORT_BATCH - 1 ? spare - each * (MAX_IMPORT_BATCH - 1) : each));
      assert.equal(bytes(largest), MAX_IMPORT_BYTES);

      const overByOneByte = largest.map((r, i) => (i === 0 ? { ...r, description: `${r.description}d` } : r));
      await assert.rejects(
        client.importRecords(ds, overByOneByte),
        new RegExp(`records take ${MAX_IMPORT_BYTES + 1} bytes; at most ${MAX_IMPORT_BYTES} per import batch`),
      );
      const overByOneRecord = [...batch(() => ''), record(`${ds}/collection/big-extra`)];
      await assert.rejects(
        client.importRecords(ds, overByOneRecord),
        new RegExp(`records has ${MAX_IMPORT_BATCH + 1} entries; at most ${MAX_IMPORT_BATCH} per import batch`),
      );

      const op = await client.importRecords(ds, largest);
      assert.equal(op.changed, MAX_IMPORT_BATCH);
      await client.awaitOperation(op.workflowId);
      await assertDerivedStateIsCurrent(db.pool);
    },
  );

  it('data PostgreSQL refuses fails the import at once, naming the SQLSTATE, instead of retrying forever', { timeout: 60_000 }, async () => {
    // A constraint of the operator's own: the registry cannot check it up front.
    await db.pool.query("ALTER TABLE registry_objects ADD CONSTRAINT operators_rule CHECK (title IS DISTINCT FROM 'forbidden')");
    try {
      const started = Date.now();
      await assert.rejects(
        client.importRecords(seeded.dataSources[0]!, [record('p/forbidden', { title: 'forbidden' })]),
        (err: Error) => err instanceof DataRejectedError && /SQLSTATE 23514/.test(err.message) && /operators_rule/.test(err.message),
      );
      assert.ok(Date.now() - started < 30_000, 'refused without retrying');
      assert.equal((await db.pool.query("SELECT count(*)::int AS n FROM registry_objects WHERE key = 'p/forbidden'")).rows[0].n, 0);
    } finally {
      await db.pool.query('ALTER TABLE registry_objects DROP CONSTRAINT operators_rule');
    }
  });

  it('a delete PostgreSQL refuses fails at once with the same DataRejectedError as any operation, and deletes nothing', { timeout: 60_000 }, async () => {
    // An operator's rule that refuses the delete of one record (a trigger raising check_violation).
    const kept = (await db.pool.query<{ key: string }>("SELECT key FROM registry_objects WHERE key NOT LIKE '%hub%' ORDER BY id DESC LIMIT 1")).rows[0]!.key;
    await db.pool.query(`CREATE FUNCTION operators_keep() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION 'record % is kept by the operator', OLD.key USING ERRCODE = '23514'; END $$`);
    await db.pool.query(
      `CREATE TRIGGER operators_keep BEFORE DELETE ON registry_objects FOR EACH ROW WHEN (OLD.key = '${kept}') EXECUTE FUNCTION operators_keep()`,
    );
    try {
      await assert.rejects(
        client.deleteRecord(kept),
        (err: Error) => err instanceof DataRejectedError && /SQLSTATE 23514/.test(err.message) && /kept by the operator/.test(err.message),
      );
      assert.equal((await db.pool.query('SELECT 1 FROM registry_objects WHERE key = $1', [kept])).rowCount, 1);
    } finally {
      await db.pool.query('DROP TRIGGER operators_keep ON registry_objects');
      await db.pool.query('DROP FUNCTION operators_keep()');
    }
  });

  it('a follow-up batch with a record PostgreSQL refuses quarantines it, finishes the rest, and blocks no later follow-up', { timeout: 120_000 }, async () => {
    const hub = seeded.hubs[0]!.key;
    const related = (
      await db.pool.query<{ id: number; key: string }>(
        'SELECT rr.related_id AS id, rr.related_key AS key FROM registry_objects ro, related_records(ro.id, ro.key) rr WHERE ro.key = $1 ORDER BY rr.related_id',
        [hub],
      )
    ).rows;
    const poisoned = related[3]!;
    await db.pool.query(`UPDATE registry_objects SET description = ${POISON} WHERE id = $1`, [poisoned.id]);
    await client.deleteRecord(hub);
    const result = await client.awaitDeletion(hub);
    assert.equal(result.affected, related.length);
    const { records, total } = await listQuarantined(db.pool);
    assert.equal(total, 1);
    assert.equal(records[0]!.recordKey, poisoned.key);
    assert.equal(records[0]!.sqlstate, '54000');
    assert.match(records[0]!.error, /string is too long for tsvector/);
    // The others in its batch were brought up to date.
    const fresh = await db.pool.query(
      'SELECT count(*)::int AS n FROM record_index ri JOIN registry_objects ro ON ro.id = ri.record_id WHERE ro.id = ANY($1) AND ri.indexed_at >= ro.updated_at',
      [related.map((r) => r.id).filter((id) => id !== poisoned.id)],
    );
    assert.equal(fresh.rows[0].n, related.length - 1);
    // A later deletion in the same data source is not held up.
    const other = (
      await db.pool.query<{ key: string }>(
        "SELECT ro.key FROM registry_objects ro WHERE ro.data_source_id = (SELECT data_source_id FROM registry_objects WHERE id = $1) AND ro.id <> $1 AND ro.key NOT LIKE '%hub%' ORDER BY ro.id DESC LIMIT 1",
        [poisoned.id],
      )
    ).rows[0]!.key;
    await client.deleteRecord(other);
    await client.awaitDeletion(other);
    // A task over the data source quarantines it too, and completes.
    const taskId = await tasks.addNewTask('INDEX_RECORDS', { dataSourceKey: records[0]!.dataSourceKey! });
    const t = await eventually(async () => {
      const info = await tasks.getTask(taskId);
      return info.status === 'COMPLETED' || info.status === 'FAILED' ? info : undefined;
    }, 60_000);
    assert.equal(t.status, 'COMPLETED', t.error);
    assert.equal((t.output as { quarantined?: number }).quarantined, 1);
    // Retried unfixed: still refused. Fixed and retried: released, and the derived state is whole.
    assert.deepEqual(await retryQuarantined(db.pool, refreshDerived), { tried: 1, released: 0, stillQuarantined: 1 });
    assert.ok((await listQuarantined(db.pool)).records[0]!.attempts >= 3, 'found by the deletion, the task and the retry');
    await db.pool.query("UPDATE registry_objects SET description = 'A fixed description', updated_at = now() WHERE id = $1", [poisoned.id]);
    assert.deepEqual(await retryQuarantined(db.pool, refreshDerived), { tried: 1, released: 1, stillQuarantined: 0 });
    assert.equal((await listQuarantined(db.pool)).total, 0);
    await assertDerivedStateIsCurrent(db.pool);
  });

  it("maintenance's cache fill quarantines a record whose rendering PostgreSQL refuses and fills the rest", { timeout: 120_000 }, async () => {
    const { rows } = await db.pool.query<{ id: number; key: string }>("SELECT id, key FROM registry_objects WHERE class = 'service' ORDER BY id LIMIT 3");
    const [refused, ...others] = rows;
    // An operator's rule the registry cannot check up front: this record's rendering is refused.
    await db.pool.query(`ALTER TABLE record_cache ADD CONSTRAINT operators_cache_rule CHECK (record_key <> '${refused!.key.replaceAll("'", "''")}') NOT VALID`);
    try {
      await db.pool.query('DELETE FROM record_cache WHERE record_id = ANY($1)', [rows.map((r) => r.id)]);
      const t = await settledTask(tasks, await tasks.addNewTask('HOURLY_REGISTRY_MAINTENANCE'), 60_000);
      assert.equal(t.status, 'COMPLETED', t.error);
      assert.equal((t.output as { filledCacheEntries: number }).filledCacheEntries, others.length);
      const quarantined = await listQuarantined(db.pool);
      assert.deepEqual(
        quarantined.records.map((r) => r.recordKey),
        [refused!.key],
      );
      assert.match(quarantined.records[0]!.error, /operators_cache_rule/);
      // Quarantined records are not tried again every hour; the next run is quiet.
      const again = await settledTask(tasks, await tasks.addNewTask('HOURLY_REGISTRY_MAINTENANCE'), 60_000);
      assert.equal((again.output as { filledCacheEntries: number }).filledCacheEntries, 0);
    } finally {
      await db.pool.query('ALTER TABLE record_cache DROP CONSTRAINT operators_cache_rule');
    }
    assert.deepEqual(await retryQuarantined(db.pool, refreshDerived), { tried: 1, released: 1, stillQuarantined: 0 });
  });
});
