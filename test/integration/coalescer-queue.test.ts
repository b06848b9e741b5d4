/**
 * The coalescer's queue in PostgreSQL: a round claims what is queued, a repeated plan returns the
 * same claim, and operations held by a round that never completed (its coalescer terminated or
 * killed between planning and completing) are claimed again by the next round, not stranded.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { completeRound, deleteRecordAndPlanFollowUp, operationOutcome, planRound, queueForCoalescer } from '../../src/registry/operations.ts';
import { seedRegistry, type SeedSummary } from '../../src/registry/seed.ts';
import { createTestDatabase, type TestDatabase } from '../helpers.ts';

describe('the coalescer queue in PostgreSQL', () => {
  let db: TestDatabase;
  let seeded: SeedSummary;

  before(async () => {
    db = await createTestDatabase();
    seeded = await seedRegistry(db.pool, { records: 120, dataSources: 1, hubs: 1, hubSize: 10, seed: 61 });
  });
  after(async () => db?.drop());

  it('a round left incomplete gives its operations to the next round; each is completed once', async () => {
    const ds = seeded.dataSources[0]!;
    const keys = (
      await db.pool.query<{ key: string }>(
        "SELECT key FROM registry_objects WHERE key NOT LIKE '%hub%' AND EXISTS (SELECT 1 FROM relations r WHERE r.from_id = registry_objects.id) ORDER BY id LIMIT 3",
      )
    ).rows.map((r) => r.key);
    const ops: string[] = [];
    for (const key of keys) {
      const outcome = await deleteRecordAndPlanFollowUp(db.pool, { key, opId: `op/${key}`, batchSize: 50 });
      assert.ok(outcome.deleted && outcome.batches > 0);
      await queueForCoalescer(db.pool, outcome.opId);
      ops.push(outcome.opId);
    }
    const args = { opIds: [], dataSourceKey: ds, batchSize: 50 };
    const first = await planRound(db.pool, { ...args, roundId: 'round/1' });
    assert.deepEqual(first.opIds, [...ops].sort());
    assert.deepEqual((await planRound(db.pool, { ...args, roundId: 'round/1' })).opIds, first.opIds, 'a repeated plan returns its claim');
    // round/1 never completes (its coalescer was killed): the next round takes its operations.
    const second = await planRound(db.pool, { ...args, roundId: 'round/2' });
    assert.deepEqual(second.opIds, first.opIds);
    assert.equal(second.affected, first.affected);
    await completeRound(db.pool, 'round/2', second.opIds, { qualityChanges: {}, reindexed: 1, recached: 2 });
    for (const op of ops) assert.deepEqual(await operationOutcome(db.pool, op), { qualityChanges: {}, reindexed: 1, recached: 2, coalescedWith: 3 });
    const third = await planRound(db.pool, { ...args, roundId: 'round/3' });
    assert.deepEqual([third.opIds, third.more], [[], false], 'nothing is left queued');
  });
});
