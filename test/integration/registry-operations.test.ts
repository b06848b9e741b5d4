/** Registry operations besides a delete: each goes through a workflow and does only the work its change requires. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { InvalidInputError, OperationRefusedError, type RegistryClient } from '../../src/client/registry.ts';
import { seedRegistry, type SeedSummary } from '../../src/registry/seed.ts';
import { assertDerivedStateIsCurrent, createTestDatabase, snapshot, startTestWorker, testClient, type TestDatabase, type TestWorker } from '../helpers.ts';

describe('registry operations', () => {
  let db: TestDatabase;
  let worker: TestWorker;
  let client: RegistryClient;
  let seeded: SeedSummary;

  before(async () => {
    db = await createTestDatabase();
    seeded = await seedRegistry(db.pool, { records: 800, dataSources: 3, hubs: 1, hubSize: 60, seed: 13 });
    worker = await startTestWorker(db.pool);
    client = await testClient(worker.taskQueue, { batchSize: 50 }, db.pool);
  });
  after(async () => {
    await client?.close();
    await worker?.stop();
    await db?.drop();
  });

  const pick = async (where: string) =>
    (await db.pool.query<{ key: string; id: number }>(`SELECT key, id FROM registry_objects WHERE ${where} ORDER BY id LIMIT 1`)).rows[0]!;

  it('a status change re-processes that one record, not its data source', async () => {
    const rec = await pick("status = 'DRAFT'");
    const before = await snapshot(db.pool);
    const outcome = await client.changeStatus(rec.key, 'SUBMITTED_FOR_ASSESSMENT');
    assert.deepEqual([outcome.affected, outcome.changed], [1, 1]);
    await client.awaitOperation(outcome.workflowId);
    const after = await snapshot(db.pool);
    assert.equal(after.index.find((r) => r.record_id === rec.id)!.document, before.index.find((r) => r.record_id === rec.id)!.document);
    const cache = after.cache.find((r) => r.record_id === rec.id)!;
    assert.equal(cache.rendering.status, 'SUBMITTED_FOR_ASSESSMENT');
    const others = (rows: { record_id: number }[]) => rows.filter((r) => r.record_id !== rec.id);
    assert.deepEqual(others(after.cache), others(before.cache), 'no other cache entry changed');
    assert.deepEqual(others(after.index), others(before.index), 'no other index entry changed');
    await assertDerivedStateIsCurrent(db.pool);
  });

  it('a status the record cannot move to is refused with the allowed ones, and nothing changes', async () => {
    const rec = await pick("status = 'PUBLISHED'");
    const before = await snapshot(db.pool);
    await assert.rejects(
      client.changeStatus(rec.key, 'APPROVED'),
      (err: Error) => err instanceof OperationRefusedError && err.message === `record "${rec.key}" is PUBLISHED; it can move to DRAFT, not APPROVED`,
    );
    await assert.rejects(
      client.changeStatus(rec.key, 'GONE' as never),
      (err: Error) => err instanceof InvalidInputError && /status "GONE" is not one of DRAFT, /.test(err.message),
    );
    assert.deepEqual(await snapshot(db.pool), before);
  });

  it('deleting a draft rechecks its related records; a published record is not a draft', async () => {
    const published = await pick("status = 'PUBLISHED'");
    await assert.rejects(client.deleteDraft(published.key), /is PUBLISHED; only drafts \(DRAFT, SUBMITTED_FOR_ASSESSMENT/);
    const draft = await pick("status <> 'PUBLISHED' AND EXISTS (SELECT 1 FROM relations r WHERE r.from_id = registry_objects.id)");
    const outcome = await client.deleteDraft(draft.key);
    assert.ok(outcome.affected >= 1);
    await client.awaitOperation(outcome.workflowId);
    assert.equal((await db.pool.query('SELECT 1 FROM registry_objects WHERE id = $1', [draft.id])).rowCount, 0);
    await assertDerivedStateIsCurrent(db.pool);
  });

  it('a harvest import adds and replaces records and brings them and their related records up to date', async () => {
    const ds = seeded.dataSources[1]!;
    const party = await pick("class = 'party'");
    const existing = await pick(`class = 'collection' AND data_source_id = (SELECT id FROM data_sources WHERE key = '${ds}')`);
    const records = [
      {
        key: `${ds}/collection/harvest-1`,
        class: 'collection' as const,
        type: 'dataset',
        group: 'Harvest',
        title: 'Harvested soil samples',
        description: 'New',
        rights: 'CC-BY',
        locationAddress: 'Hobart',
        identifiers: ['10.1/h1'],
        subjects: ['0401'],
        dates: ['2020'],
        spatialCoverage: 'Tasmania',
        citationInfo: 'H (2020)',
        relations: [{ key: party.key, type: 'hasCollector' }],
      },
      { key: existing.key, class: 'collection' as const, type: 'dataset', group: 'Harvest', title: 'Replaced title', relations: [] },
    ];
    const outcome = await client.importRecords(ds, records);
    assert.equal(outcome.changed, 2);
    await client.awaitOperation(outcome.workflowId);
    const rows = (await db.pool.query('SELECT key, title, quality_level FROM registry_objects WHERE key = ANY($1) ORDER BY key', [records.map((r) => r.key)]))
      .rows;
    assert.deepEqual(rows.map((r) => r.title).sort(), ['Harvested soil samples', 'Replaced title']);
    const partyCache = (await db.pool.query('SELECT rendering FROM record_cache WHERE record_id = $1', [party.id])).rows[0].rendering;
    assert.ok(
      partyCache.related.some((r: { key: string }) => r.key === records[0]!.key),
      "the party's rendering lists its new collection",
    );
    await assertDerivedStateIsCurrent(db.pool);
    await assert.rejects(
      client.importRecords(ds, [{ key: 'x', class: 'dataset' as never }]),
      /records\[0\]\.class "dataset" is not one of collection, party, activity, service/,
    );
    await assert.rejects(client.importRecords('no-such-source', [{ key: 'x', class: 'party' }]), /data source "no-such-source" does not exist/);
  });

  it('clearing a data source deletes its records and rechecks only the records of other data sources related to them', async () => {
    const ds = seeded.dataSources[2]!;
    const count = (
      await db.pool.query('SELECT count(*)::int AS n FROM registry_objects ro JOIN data_sources d ON d.id = ro.data_source_id WHERE d.key = $1', [ds])
    ).rows[0].n;
    const outcome = await client.clearDataSource(ds);
    assert.equal(outcome.changed, count);
    const total = (await db.pool.query('SELECT count(*)::int AS n FROM registry_objects')).rows[0].n;
    assert.ok(outcome.affected < total, `${outcome.affected} of ${total} remaining records re-processed`);
    await client.awaitOperation(outcome.workflowId);
    assert.equal(
      (await db.pool.query('SELECT count(*)::int AS n FROM registry_objects ro JOIN data_sources d ON d.id = ro.data_source_id WHERE d.key = $1', [ds])).rows[0]
        .n,
      0,
    );
    await assertDerivedStateIsCurrent(db.pool);
  });
});
