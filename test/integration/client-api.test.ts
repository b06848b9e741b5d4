/**
 * The registry client API holds no surprises: a caller waits for its own deletion; two concurrent
 * deletes of one key are one deletion and one RecordNotFound; outcomes are read from PostgreSQL
 * however long ago; a deletion with nothing to follow up is done; one error per condition across
 * operations; the workers' follow-up configuration reaches every coalescer, every round.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { WorkflowNotFoundError } from '@temporalio/client';
import { RecordNotFoundError, type RegistryClient } from '../../src/client/registry.ts';
import { seedRegistry, type SeedSummary } from '../../src/registry/seed.ts';
import { coalescerWorkflowId, deleteRecordWorkflowId } from '../../src/client/workflow-ids.ts';
import { createTestDatabase, eventually, startTestWorker, testClient, uniqueName, type TestDatabase, type TestWorker } from '../helpers.ts';

describe('the registry client API', () => {
  let db: TestDatabase;
  let worker: TestWorker;
  let client: RegistryClient;
  let seeded: SeedSummary;
  const taskQueue = uniqueName('registry-tasks-api');

  before(async () => {
    db = await createTestDatabase();
    seeded = await seedRegistry(db.pool, { records: 600, dataSources: 3, hubs: 2, hubSize: 40, seed: 51 });
    worker = await startTestWorker(db.pool, taskQueue, { FOLLOWUP_BATCH_SIZE: '7', FOLLOWUP_QUIET: '100 milliseconds', FOLLOWUP_MAX_WAIT: '1 second' });
    // No follow-up settings: the workers' configuration decides them.
    client = await testClient(taskQueue, undefined, db.pool);
  });
  after(async () => {
    await client?.close();
    await worker?.stop();
    await db?.drop();
  });

  const leafIn = async (ds: string, offset = 0) =>
    (
      await db.pool.query<{ key: string; related: number }>(
        `SELECT ro.key, (SELECT count(*)::int FROM related_records(ro.id, ro.key)) AS related FROM registry_objects ro JOIN data_sources d ON d.id = ro.data_source_id
        WHERE d.key = $1 AND ro.key NOT LIKE '%hub%' AND (SELECT count(*) FROM related_records(ro.id, ro.key)) > 0 ORDER BY ro.id OFFSET $2 LIMIT 1`,
        [ds, offset],
      )
    ).rows[0]!;

  it('two concurrent deletes of one key: one deletes, the other is told RecordNotFound; the run reports the deletion', async () => {
    // Four keys at once: the race (a later update's delete beating the initial one to the row) shows more often.
    const keys = await Promise.all([0, 1, 2, 3].map(async (offset) => (await leafIn(seeded.dataSources[0]!, offset)).key));
    await Promise.all(
      keys.map(async (key) => {
        const results = await Promise.allSettled([client.deleteRecord(key), client.deleteRecord(key)]);
        const deleted = results.filter((r) => r.status === 'fulfilled' && r.value.deleted);
        const refused = results.filter((r) => r.status === 'rejected' && r.reason instanceof RecordNotFoundError);
        assert.deepEqual([deleted.length, refused.length], [1, 1], JSON.stringify(results.map((r) => r.status)));
        // The refused one does not spoil the winner's wait.
        const winner = (deleted[0] as PromiseFulfilledResult<Awaited<ReturnType<RegistryClient['deleteRecord']>>>).value;
        assert.equal((await client.awaitDeletion(key, winner.runId)).deleted, true, `${key}: the run reports nothing deleted`);
      }),
    );
  });

  it('a caller waits for its own deletion, whatever later deletes of the key do; the outcome is read from PostgreSQL after the coalescer is gone', async () => {
    const { key, related } = await leafIn(seeded.dataSources[1]!);
    const first = await client.deleteRecord(key);
    const result = await client.awaitDeletion(key, first.runId);
    assert.equal(result.affected, related);
    // A second delete of the key, once the first run is closed: a new run that finds nothing.
    await assert.rejects(client.deleteRecord(key), RecordNotFoundError);
    const again = await client.awaitDeletion(key, first.runId);
    assert.deepEqual(again, result, 'the first caller still sees its own deletion');
    // The coalescer remembers nothing across runs: terminated here, the outcome still comes from PostgreSQL.
    await client.client.workflow.getHandle(coalescerWorkflowId(first.dataSourceKey!, taskQueue)).terminate('test: forget everything');
    assert.deepEqual(await client.awaitDeletion(key, first.runId), result);
    assert.ok(result.reindexed > 0);
    // Its progress, done, counts what its round counted, from PostgreSQL.
    const progress = await client.deletionProgress(key, first.runId);
    assert.deepEqual([progress.phase, progress.affected], ['done', related]);
  });

  it('a deletion with no related records is done at once, with no coalescer; a draft deleted twice is RecordNotFound like a record', async () => {
    // A record of its own in a data source of its own: nothing related, no coalescer ever started there.
    const { rows } = await db.pool.query<{ id: number }>("INSERT INTO data_sources (key, title) VALUES ('lonely-source', 'Lonely') RETURNING id");
    await db.pool.query("INSERT INTO registry_objects (key, class, data_source_id, title) VALUES ('lonely-source/lone', 'collection', $1, 'Alone')", [
      rows[0]!.id,
    ]);
    const outcome = await client.deleteRecord('lonely-source/lone');
    assert.deepEqual([outcome.deleted, outcome.affected, outcome.plannedByRound], [true, 0, undefined]);
    const progress = await eventually(async () => {
      const p = await client.deletionProgress('lonely-source/lone', outcome.runId);
      return p.phase === 'done' ? p : undefined;
    }, 10_000);
    assert.equal(progress.phase, 'done');
    await assert.rejects(client.client.workflow.getHandle(coalescerWorkflowId('lonely-source', taskQueue)).describe(), WorkflowNotFoundError);
    await assert.rejects(
      client.deleteDraft('no/such/draft'),
      (err: Error) => err instanceof RecordNotFoundError && /record "no\/such\/draft" does not exist/.test(err.message),
    );
    await assert.rejects(client.changeStatus('no/such/draft', 'DRAFT'), RecordNotFoundError);
  });

  it('a deletion started from the temporal CLI follows up in batches of the workers\u2019 configured size, and a running coalescer takes a new configuration on its next round', async () => {
    const hub = seeded.hubs[0]!;
    const workflowId = deleteRecordWorkflowId(hub.key, taskQueue);
    // As `temporal workflow start --type deleteRecord --input '{"key": ...}'` would: no settings at all.
    await client.client.workflow.start('deleteRecord', { taskQueue, workflowId, args: [{ key: hub.key }] });
    await client.awaitDeletion(hub.key);
    const rounds = async () =>
      (
        await db.pool.query<{ affected_count: number; batch_count: number }>(
          "SELECT affected_count, batch_count FROM registry_operations WHERE kind = 'FOLLOW_UP_ROUND' ORDER BY created_at DESC LIMIT 1",
        )
      ).rows[0]!;
    const first = await rounds();
    assert.equal(first.batch_count, Math.ceil(first.affected_count / 7));
    // The same data source's coalescer is running; a worker with another configuration takes over.
    await worker.stop();
    worker = await startTestWorker(db.pool, taskQueue, { FOLLOWUP_BATCH_SIZE: '3', FOLLOWUP_QUIET: '100 milliseconds' });
    const { key } = await leafIn(seeded.dataSources.find((d) => hub.key.startsWith(`${d}/`)) ?? seeded.dataSources[0]!, 5);
    const op = await client.deleteRecord(key);
    await client.awaitDeletion(key, op.runId);
    const second = await rounds();
    assert.equal(second.batch_count, Math.ceil(second.affected_count / 3));
  });
});
