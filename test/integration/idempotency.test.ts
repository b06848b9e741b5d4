/**
 * Temporal runs an activity at least once: each activity run twice with the same input must
 * leave the registry exactly as one run did. Runs the real activities on a real PostgreSQL,
 * inside the SDK's activity context.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { createDerivedActivities } from '../../src/activities/derived.ts';
import { createFollowUpActivities } from '../../src/activities/followup.ts';
import { createRecordActivities } from '../../src/activities/records.ts';
import { seedRegistry, type SeedSummary } from '../../src/registry/seed.ts';
import type { DeletionOutcome, FollowUpBatchResult } from '../../src/shared.ts';
import { createTestDatabase, snapshot, type TestDatabase } from '../helpers.ts';

describe('activities are idempotent', () => {
  let db: TestDatabase;
  let seeded: SeedSummary;
  // The SDK's activity context (heartbeats, failure conversion) around the real activity code.
  const env = new MockActivityEnvironment({}, { logger: new DefaultLogger('ERROR') });

  before(async () => {
    db = await createTestDatabase();
    seeded = await seedRegistry(db.pool, { records: 800, dataSources: 2, hubs: 1, hubSize: 200, seed: 11 });
  });
  after(async () => db?.drop());

  it('running each step of a deletion twice changes nothing more than running it once', async () => {
    const acts = { ...createRecordActivities({ pool: db.pool }), ...createDerivedActivities({ pool: db.pool }) };
    const hub = seeded.hubs[0]!;
    const args = { key: hub.key, opId: 'test-op-1', batchSize: 60 };

    const first: DeletionOutcome = await env.run(acts.deleteRecord, args);
    const afterOnce = await snapshot(db.pool);
    const second = await env.run(acts.deleteRecord, args);
    assert.deepEqual(second, first, "a retried delete returns the first run's outcome");
    assert.deepEqual(await snapshot(db.pool), afterOnce);
    assert.ok(first.deleted && first.affected >= 200 && first.batches === Math.ceil(first.affected / 60));

    for (let batchNo = 0; batchNo < first.batches; batchNo++) {
      const ref = { opId: args.opId, batchNo };
      for (const step of [acts.recheckQualityBatch, acts.reindexBatch, acts.regenerateCacheBatch]) {
        const once: FollowUpBatchResult = await env.run(step, ref);
        const state = await snapshot(db.pool);
        const twice: FollowUpBatchResult = await env.run(step, ref);
        assert.equal(twice.changed, 0, `${step.name} of batch ${batchNo} changed rows on its second run`);
        assert.equal(twice.records, once.records);
        assert.deepEqual(await snapshot(db.pool), state);
      }
    }
    await env.run(acts.completeOperation, args.opId);
    const done = await snapshot(db.pool);
    await env.run(acts.completeOperation, args.opId);
    assert.deepEqual(await snapshot(db.pool), done);
  });

  it("a coalesced round's steps run twice report the first run's figures and change nothing more", async () => {
    const acts = { ...createRecordActivities({ pool: db.pool }), ...createDerivedActivities({ pool: db.pool }) };
    const round = { ...createFollowUpActivities({ pool: db.pool, temporal: undefined as never, taskQueue: 'unused' }) };
    // An operation's work list, as a deletion writes it before its hand-off.
    const victim = (
      await db.pool.query<{ key: string }>(
        `SELECT ro.key FROM registry_objects ro WHERE ro.key NOT LIKE '%/hub-%' AND (SELECT count(*) FROM relations r WHERE r.from_id = ro.id) >= 2 ORDER BY ro.key LIMIT 1`,
      )
    ).rows[0]!.key;
    const op: DeletionOutcome = await env.run(acts.deleteRecord, { key: victim, opId: 'test-op-round', batchSize: 1 });
    assert.ok(op.batches >= 2, `${op.batches} batches`);
    const args = { roundId: 'test-round-1', opIds: [op.opId], dataSourceKey: op.dataSourceKey!, batchSize: 1 };
    const plan: { opId: string; affected: number; batches: number } = await env.run(round.planFollowUpRound, args);
    assert.deepEqual(await env.run(round.planFollowUpRound, args), plan, 'a repeated plan returns the first one');
    for (let batchNo = 0; batchNo < plan.batches; batchNo++) {
      const ref = { opId: plan.opId, batchNo };
      const once = await env.run(acts.refreshBatch, ref);
      const state = await snapshot(db.pool);
      const [twice, concurrent] = await Promise.all([env.run(acts.refreshBatch, ref), env.run(acts.refreshBatch, ref)]);
      assert.deepEqual(twice, once, `batch ${batchNo} repeated reports its first run's figures`);
      assert.deepEqual(concurrent, once);
      assert.deepEqual(await snapshot(db.pool), state);
    }
    const completion = { roundId: args.roundId, opIds: args.opIds, dataSourceKey: args.dataSourceKey };
    const first = await env.run(round.completeFollowUpRound, completion);
    const done = await snapshot(db.pool);
    assert.deepEqual(await env.run(round.completeFollowUpRound, completion), first, 'a repeated completion answers the same');
    assert.deepEqual(await snapshot(db.pool), done);
  });

  it('a delete of a key that does not exist writes nothing', async () => {
    const acts = { ...createRecordActivities({ pool: db.pool }), ...createDerivedActivities({ pool: db.pool }) };
    const before = await snapshot(db.pool);
    const outcome: DeletionOutcome = await env.run(acts.deleteRecord, { key: 'missing/key', opId: 'test-op-2', batchSize: 100 });
    assert.equal(outcome.deleted, false);
    assert.deepEqual(await snapshot(db.pool), before);
  });

  it('bad input fails without retries and writes nothing', async () => {
    const acts = { ...createRecordActivities({ pool: db.pool }), ...createDerivedActivities({ pool: db.pool }) };
    const before = await snapshot(db.pool);
    await assert.rejects(
      env.run(acts.deleteRecord, { key: ' ', opId: 'test-op-3', batchSize: 100 }),
      (err: Error & { nonRetryable?: boolean; type?: string }) => {
        assert.equal(err.type, 'InvalidInput');
        assert.equal(err.nonRetryable, true);
        return true;
      },
    );
    assert.deepEqual(await snapshot(db.pool), before);
  });
});
