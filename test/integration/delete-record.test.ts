/** Record deletion end to end, on the real Temporal dev server and a real PostgreSQL. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { InvalidInputError, RecordNotFoundError, type RegistryClient } from '../../src/client/registry.ts';
import { rebuildDerived, seedRegistry, type SeedSummary } from '../../src/registry/seed.ts';
import { coalescerWorkflowId, deleteRecordWorkflowId } from '../../src/client/workflow-ids.ts';
import { MAX_KEY_LENGTH } from '../../src/shared.ts';
import {
  assertDerivedStateIsCurrent,
  createTestDatabase,
  eventually,
  snapshot,
  startTestWorker,
  temporalAddress,
  testClient,
  type TestDatabase,
  type TestWorker,
  startWithTemporalCli,
} from '../helpers.ts';

const run = promisify(execFile);

describe('record deletion', () => {
  let db: TestDatabase;
  let worker: TestWorker;
  let client: RegistryClient;
  let seeded: SeedSummary;

  before(async () => {
    db = await createTestDatabase();
    seeded = await seedRegistry(db.pool, { records: 1500, dataSources: 3, hubs: 3, hubSize: 300, seed: 7 });
    worker = await startTestWorker(db.pool);
    // Small batches so the hub's follow-up spans several activities and runs them concurrently.
    client = await testClient(worker.taskQueue, { batchSize: 70, concurrency: 3 }, db.pool);
  });
  after(async () => {
    await client?.close();
    await worker?.stop();
    await db?.drop();
  });

  const relatedIds = async (key: string): Promise<number[]> =>
    (
      await db.pool.query<{ id: number }>(
        'SELECT DISTINCT rr.related_id AS id FROM registry_objects ro, related_records(ro.id, ro.key) rr WHERE ro.key = $1 ORDER BY 1',
        [key],
      )
    ).rows.map((r) => r.id);

  it('deleting a hub record lowers related quality levels, drops it from the index, refreshes related cache entries, and changes nothing else', async () => {
    const hub = seeded.hubs.find((h) => h.class === 'activity')!;
    const hubRow = (await db.pool.query<{ id: number; title: string }>('SELECT id, title FROM registry_objects WHERE key = $1', [hub.key])).rows[0]!;
    const related = await relatedIds(hub.key);
    assert.ok(related.length >= 300, `the hub has ${related.length} related records`);
    const before = await snapshot(db.pool);

    const outcome = await client.deleteRecord(hub.key);
    // The answer comes once the record is gone and its follow-up is recorded; its round finds and counts the related records.
    assert.deepEqual([outcome.deleted, outcome.plannedByRound, outcome.affected, outcome.batches], [true, true, 0, 0]);
    assert.equal((await db.pool.query('SELECT 1 FROM registry_objects WHERE key = $1', [hub.key])).rowCount, 0);
    assert.equal((await db.pool.query('SELECT 1 FROM record_index WHERE record_key = $1', [hub.key])).rowCount, 0);

    const result = await client.awaitDeletion(hub.key);
    const afterSnap = await snapshot(db.pool);
    assert.equal(result.affected, related.length);
    const round = await db.pool.query<{ batch_count: number }>(
      'SELECT r.batch_count FROM registry_operations o JOIN registry_operations r ON r.op_id = o.round_id WHERE o.op_id = $1',
      [outcome.opId],
    );
    assert.equal(round.rows[0]!.batch_count, Math.ceil(related.length / 70));
    // The hub's own relations, left for its round to plan from, went when the round completed.
    assert.equal((await db.pool.query('SELECT 1 FROM relations WHERE from_id = $1', [hubRow.id])).rowCount, 0);

    // Quality: levels only went down, and collections that had only this activity lost level 3.
    const levelBefore = new Map(before.records.map((r) => [r.id, r.quality_level]));
    const lowered = afterSnap.records.filter((r) => related.includes(r.id) && r.quality_level < levelBefore.get(r.id)!);
    const raised = afterSnap.records.filter((r) => levelBefore.has(r.id) && r.quality_level > levelBefore.get(r.id)!);
    assert.ok(lowered.length > 0, 'some related records lost a quality level');
    assert.deepEqual(raised, []);
    assert.equal(result.qualityChanges['3->2'], lowered.filter((r) => levelBefore.get(r.id) === 3 && r.quality_level === 2).length);
    assert.equal(
      Object.values(result.qualityChanges).reduce((a, b) => a + b, 0),
      lowered.length,
    );

    // Index: the hub is gone from search; related records no longer match its title through it.
    const word = hubRow.title.split(/\W+/).find((w) => w.length > 6)!;
    const hits = await db.pool.query(`SELECT record_id FROM record_index WHERE document @@ plainto_tsquery('english', $1) AND record_id = ANY($2)`, [
      word,
      [hubRow.id],
    ]);
    assert.equal(hits.rowCount, 0);

    // Cache: every related record's rendering was regenerated and no longer lists the hub.
    const cacheBefore = new Map(before.cache.map((c) => [c.record_id, c]));
    for (const c of afterSnap.cache.filter((c) => related.includes(c.record_id))) {
      assert.ok(c.generated_at > cacheBefore.get(c.record_id)!.generated_at, `cache of ${c.record_id} regenerated`);
      assert.ok(!c.rendering.related.some((x: { key: string }) => x.key === hub.key));
    }
    assert.equal(result.recached, related.length);

    // Nothing else changed: every row of every record outside the related set is as it was.
    const untouched = (rows: { id?: number; record_id?: number }[]) => rows.filter((r) => ![...related, hubRow.id].includes((r.id ?? r.record_id)!));
    assert.deepEqual(untouched(afterSnap.records), untouched(before.records));
    assert.deepEqual(untouched(afterSnap.index), untouched(before.index));
    assert.deepEqual(untouched(afterSnap.cache), untouched(before.cache));
    assert.deepEqual(afterSnap.followups, [], 'the work list is cleared when the follow-up completes');
    await assertDerivedStateIsCurrent(db.pool);
  });

  it('the deletion workflow is listed by its search attributes', async () => {
    const hub = seeded.hubs.find((h) => h.class === 'activity')!;
    // On this file's queue: other files' registries have records of the same keys on the same server.
    const query = `TaskQueue = '${worker.taskQueue}' AND TaskMethod = 'DELETE_RECORD' AND TaskStatus = 'COMPLETED' AND RegistryObjectKeys = '${hub.key}' AND DataSourceKey = '${hub.key.split('/')[0]}'`;
    const found = await eventually(async () => {
      for await (const wf of client.client.workflow.list({ query })) return wf;
      return undefined;
    });
    assert.equal(found.workflowId, deleteRecordWorkflowId(hub.key, worker.taskQueue));
  });

  it('a deletion started from the temporal CLI with plain JSON input runs', async () => {
    const hub = seeded.hubs.find((h) => h.class === 'party')!;
    const related = await relatedIds(hub.key);
    const workflowId = `cli-${deleteRecordWorkflowId(hub.key, worker.taskQueue)}`;
    await startWithTemporalCli(worker.taskQueue, 'deleteRecord', workflowId, { key: hub.key });
    const { stdout } = await run(process.env.TEMPORAL_CLI!, [
      'workflow',
      'result',
      '--address',
      temporalAddress(),
      '--workflow-id',
      workflowId,
      '--output',
      'json',
    ]);
    const result = JSON.parse(stdout).result;
    assert.deepEqual([result.deleted, result.plannedByRound], [true, true]);
    assert.equal((await db.pool.query('SELECT 1 FROM registry_objects WHERE key = $1', [hub.key])).rowCount, 0);
    // The result says where the follow-up went: the data source's coalescer, which reports on it.
    assert.equal(result.coalesced.dataSourceKey, hub.key.split('/')[0]);
    // Started without search attributes, it sets them itself, listed like a client's deletion.
    const listed = `WorkflowId = '${workflowId}' AND TaskMethod = 'DELETE_RECORD' AND TaskStatus = 'COMPLETED' AND RegistryObjectKeys = '${hub.key}' AND DataSourceKey = '${result.coalesced.dataSourceKey}'`;
    await eventually(async () => {
      for await (const wf of client.client.workflow.list({ query: listed })) return wf;
      return undefined;
    });
    const status = await eventually(async () => {
      const { stdout: q } = await run(process.env.TEMPORAL_CLI!, [
        'workflow',
        'query',
        '--address',
        temporalAddress(),
        '--workflow-id',
        coalescerWorkflowId(result.coalesced.dataSourceKey, worker.taskQueue),
        '--type',
        'followUpStatus',
        '--input',
        JSON.stringify(result.coalesced.opIds[0]),
        '--output',
        'json',
      ]);
      const s = JSON.parse(q).queryResult[0];
      return s.state === 'done' ? s : undefined;
    }, 30_000);
    assert.ok(status.roundRecords >= related.length);
    await assertDerivedStateIsCurrent(db.pool);
  });

  it('deleting a record that does not exist fails with a message naming the key and changes nothing', async () => {
    const before = await snapshot(db.pool);
    await assert.rejects(client.deleteRecord('no/such/record'), (err: Error) => {
      assert.ok(err instanceof RecordNotFoundError);
      assert.equal(err.message, 'record "no/such/record" does not exist');
      return true;
    });
    assert.deepEqual(await snapshot(db.pool), before);
  });

  it('a bad key is refused before anything starts', async () => {
    await assert.rejects(client.deleteRecord(''), (err: Error) => err instanceof InvalidInputError && /must not be empty/.test(err.message));
    await assert.rejects(client.deleteRecord('x'.repeat(600)), /600 characters long; at most 512/);
    await assert.rejects(client.deleteRecord(42 as unknown as string), /must be a string, got number/);
    const started = [];
    for await (const wf of client.client.workflow.list({ query: `WorkflowId = '${deleteRecordWorkflowId('', worker.taskQueue)}'` })) started.push(wf);
    assert.deepEqual(started, []);
  });

  it('a record deleted while another deletion follows up is handled by both', async () => {
    // Two records related to each other and to others: each deletion rechecks the survivors.
    const { rows } = await db.pool.query<{ a: string; b: string }>(
      `SELECT f.key AS a, t.key AS b FROM relations r JOIN registry_objects f ON f.id = r.from_id JOIN registry_objects t ON t.key = r.to_key
        WHERE f.class = 'collection' AND t.class = 'party' AND f.key NOT LIKE '%hub%' AND t.key NOT LIKE '%hub%' LIMIT 1`,
    );
    const { a, b } = rows[0]!;
    const [ra, rb] = await Promise.all([client.deleteRecord(a), client.deleteRecord(b)]);
    assert.ok(ra.deleted && rb.deleted);
    await Promise.all([client.awaitDeletion(a), client.awaitDeletion(b)]);
    await assertDerivedStateIsCurrent(db.pool);
  });

  it('the longest keys accepted (512 three-byte characters; a data source key of 255) are imported, changed, deleted and followed up', async () => {
    // 1,536 bytes of key: more than the server's 1,000-byte workflow id limit and SQL persistence's 255 characters, so ids carry a digest instead.
    const dataSourceKey = '源'.repeat(255);
    await db.pool.query('INSERT INTO data_sources (key, title) VALUES ($1, $2)', [dataSourceKey, 'A data source with the longest key']);
    const longKey = (c: string) => c.repeat(MAX_KEY_LENGTH);
    const [first, second] = [longKey('鍵'), longKey('錠')];
    const records = [first, second].map((key) => ({
      key,
      class: 'collection' as const,
      title: 'A long-keyed record',
      relations: [{ key: 'long/party', type: 'isOwnedBy' }],
    }));
    const imported = await client.importRecords(dataSourceKey, [...records, { key: 'long/party', class: 'party', title: 'Its owner' }]);
    await client.awaitOperation(imported.workflowId);
    const changed = await client.changeStatus(first, 'APPROVED');
    await client.awaitOperation(changed.workflowId);
    // Two keys that differ only past the part an id keeps get two deletions of their own.
    const [a, b] = await Promise.all([client.deleteRecord(first), client.deleteRecord(second)]);
    assert.notEqual(a.workflowId, b.workflowId);
    assert.ok(Buffer.byteLength(a.workflowId) <= 1000 && [...a.workflowId].length <= 255, a.workflowId);
    assert.deepEqual([a.deleted, b.deleted], [true, true]);
    const done = await client.awaitDeletion(first, a.runId);
    assert.deepEqual([done.key, done.affected], [first, 1]);
    assert.equal((await client.awaitDeletion(second, b.runId)).affected, 1);
    assert.equal((await db.pool.query('SELECT 1 FROM registry_objects WHERE key = ANY($1)', [[first, second]])).rowCount, 0);
    await assertDerivedStateIsCurrent(db.pool);
  });

  it('rebuilding derived state of the whole registry after all deletions changes nothing', async () => {
    const ids = (await db.pool.query<{ id: number }>('SELECT id FROM registry_objects')).rows.map((r) => r.id);
    const before = await snapshot(db.pool);
    await rebuildDerived(db.pool, ids);
    assert.deepEqual(await snapshot(db.pool), before);
  });
});
