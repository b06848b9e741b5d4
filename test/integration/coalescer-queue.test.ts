/**
 * The coalescer's queue in PostgreSQL: a round claims what is queued, a repeated plan returns the
 * same claim, and operations held by a round that never completed (its coalescer terminated or
 * killed between planning and completing) are claimed again by the next round, not stranded.
 * A deletion planned by its round leaves its relations in place for the round to plan from. A round
 * takes at most MAX_OPS_PER_ROUND operations, and its plan (one statement) counts each its own.
 * Follow-ups that waited too long are found for the sweep that wakes their coalescer again.
 * A deletion does not wake a coalescer that is awake (it has planned a round and checks its queue
 * before it sleeps), and that check and the deletions are serialised so that none is missed.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  coalescerMaySleep,
  completeRound,
  deleteRecordAndPlanFollowUp,
  MAX_OPS_PER_ROUND,
  deleteRecordForRound,
  operationOutcome,
  planRound,
  queueForCoalescer,
} from '../../src/registry/operations.ts';
import { seedRegistry, type SeedSummary } from '../../src/registry/seed.ts';
import { strandedFollowUps } from '../../src/registry/backlog.ts';
import { applyRegistryOperation } from '../../src/registry/registry-operations.ts';
import { STATUS_TRANSITIONS, type RecordStatus } from '../../src/shared.ts';
import { createTestDatabase, eventually, type TestDatabase } from '../helpers.ts';

describe('the coalescer queue in PostgreSQL', () => {
  let db: TestDatabase;
  let seeded: SeedSummary;

  before(async () => {
    db = await createTestDatabase();
    seeded = await seedRegistry(db.pool, { records: 120, dataSources: 1, hubs: 1, hubSize: 10, seed: 61 });
  });
  after(async () => db?.drop());

  /** The first `n` records (by id) with outbound relations, hubs aside. */
  const keysWithRelations = async (n: number) =>
    (
      await db.pool.query<{ key: string }>(
        "SELECT key FROM registry_objects WHERE key NOT LIKE '%hub%' AND EXISTS (SELECT 1 FROM relations r WHERE r.from_id = registry_objects.id) ORDER BY id LIMIT $1",
        [n],
      )
    ).rows.map((r) => r.key);

  it('a round left incomplete gives its operations to the next round; each is completed once', async () => {
    const ds = seeded.dataSources[0]!;
    const keys = await keysWithRelations(3);
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
    for (const op of ops) {
      const outcome = await operationOutcome(db.pool, op);
      assert.deepEqual(outcome, { qualityChanges: {}, reindexed: 1, recached: 2, coalescedWith: 3, affected: (outcome as { affected: number }).affected });
    }
    const third = await planRound(db.pool, { ...args, roundId: 'round/3' });
    assert.deepEqual([third.opIds, third.more], [[], false], 'nothing is left queued');
  });

  it('an operation made for the coalescer is queued by the transaction that commits it, or complete there when it has nothing to follow up; one made otherwise is neither', async () => {
    const ds = seeded.dataSources[0]!;
    const [key] = await keysWithRelations(8).then((keys) => keys.slice(7));
    const state = async (opId: string) =>
      (await db.pool.query('SELECT handed_off_at IS NOT NULL AS queued, completed_at IS NOT NULL AS done FROM registry_operations WHERE op_id = $1', [opId]))
        .rows[0];
    const { status } = (await db.pool.query<{ status: RecordStatus }>('SELECT status FROM registry_objects WHERE key = $1', [key])).rows[0]!;
    const to = STATUS_TRANSITIONS[status][0]!;
    await applyRegistryOperation(db.pool, { kind: 'CHANGE_STATUS', key: key!, to }, 'op/at-commit/status', 50, {});
    assert.deepEqual(await state('op/at-commit/status'), { queued: true, done: false });
    await db.pool.query("INSERT INTO data_sources (key, title) VALUES ('empty-at-commit', 'Empty')");
    await applyRegistryOperation(db.pool, { kind: 'CLEAR_DATA_SOURCE', dataSourceKey: 'empty-at-commit' }, 'op/at-commit/empty', 50, {});
    assert.deepEqual(await state('op/at-commit/empty'), { queued: false, done: true });
    // Executions from before the coalescer follow up themselves: their operations are no round's.
    await applyRegistryOperation(db.pool, { kind: 'CHANGE_STATUS', key: key!, to: STATUS_TRANSITIONS[to][0]! }, 'op/at-commit/legacy', 50);
    assert.deepEqual(await state('op/at-commit/legacy'), { queued: false, done: false });
    const [deleted] = await keysWithRelations(9).then((keys) => keys.slice(8));
    await deleteRecordAndPlanFollowUp(db.pool, { key: deleted!, opId: 'op/at-commit/delete', batchSize: 50, forCoalescer: {} });
    assert.deepEqual(await state('op/at-commit/delete'), { queued: true, done: false });
    // Queued, they belong to the data source's next round.
    const round = await planRound(db.pool, { roundId: 'round/at-commit', opIds: [], dataSourceKey: ds, batchSize: 50 });
    assert.ok(round.opIds.includes('op/at-commit/status') && round.opIds.includes('op/at-commit/delete'), JSON.stringify(round.opIds));
    assert.ok(!round.opIds.includes('op/at-commit/legacy'));
    await completeRound(db.pool, 'round/at-commit', round.opIds);
  });

  it('follow-ups waiting longer than the limit are found for the sweep, the oldest unclaimed named first, else the oldest a round left incomplete', async () => {
    const ds = seeded.dataSources[0]!;
    const keys = await keysWithRelations(3);
    const [a, b, c] = await Promise.all(keys.map((key) => deleteRecordForRound(db.pool, { key, opId: `stranded/${key}` }).then((r) => r.outcome.opId)));
    const waitedFor = (opId: string, seconds: number) =>
      db.pool.query(`UPDATE registry_operations SET handed_off_at = now() - $2 * interval '1 second' WHERE op_id = $1`, [opId, seconds]);
    assert.deepEqual(await strandedFollowUps(db.pool, 60_000), [], 'all just queued');
    await waitedFor(a!, 300);
    await waitedFor(b!, 200);
    assert.deepEqual(await strandedFollowUps(db.pool, 60_000), [{ dataSourceKey: ds, opId: a }], 'one per data source: the oldest');
    // A round claims all three and is never completed (its coalescer terminated): the oldest claimed is named.
    const round = await planRound(db.pool, { roundId: 'round/stranded', opIds: [], dataSourceKey: ds, batchSize: 50 });
    assert.deepEqual(round.opIds, [a, b, c].sort());
    assert.deepEqual(await strandedFollowUps(db.pool, 60_000), [{ dataSourceKey: ds, opId: a, roundId: 'round/stranded' }], 'claimed by a round, with it');
    // One queued after that round, unclaimed, is named before them: a live coalescer ignores a signal for an operation it is processing.
    const [late] = await keysWithRelations(1);
    const d = (await deleteRecordForRound(db.pool, { key: late!, opId: `stranded/${late}` })).outcome.opId;
    await waitedFor(d, 100);
    assert.deepEqual(await strandedFollowUps(db.pool, 60_000), [{ dataSourceKey: ds, opId: d }]);
    assert.deepEqual(
      await strandedFollowUps(db.pool, 150_000),
      [{ dataSourceKey: ds, opId: a, roundId: 'round/stranded' }],
      'the limit applies to each operation',
    );
    const next = await planRound(db.pool, { roundId: 'round/stranded-2', opIds: [], dataSourceKey: ds, batchSize: 50 });
    await completeRound(db.pool, 'round/stranded-2', next.opIds, { qualityChanges: {}, reindexed: 0, recached: 0 });
    assert.deepEqual(await strandedFollowUps(db.pool, 0), [], 'none left once a round completed them');
  });
});

describe('a deletion planned by its round, in PostgreSQL', () => {
  let db: TestDatabase;
  let seeded: SeedSummary;

  before(async () => {
    db = await createTestDatabase();
    seeded = await seedRegistry(db.pool, { records: 120, dataSources: 1, hubs: 1, hubSize: 10, seed: 62 });
  });
  after(async () => db?.drop());

  it('the delete leaves the relations, each round plans from them, the completed round removes them; a record without relations is done at once', async () => {
    const ds = seeded.dataSources[0]!;
    const hub = seeded.hubs[0]!.key;
    const { rows: picked } = await db.pool.query<{ id: string; key: string }>(
      `SELECT id, key FROM registry_objects WHERE key = $1
        UNION ALL (SELECT id, key FROM registry_objects ro WHERE key NOT LIKE '%hub%'
                     AND EXISTS (SELECT 1 FROM relations r WHERE r.from_id = ro.id) ORDER BY id DESC LIMIT 1)`,
      [hub],
    );
    const relatedOf = async (id: string, key: string) =>
      (await db.pool.query<{ related_id: string }>('SELECT DISTINCT related_id FROM related_records($1, $2)', [id, key])).rows.map((r) => Number(r.related_id));
    const related = await Promise.all(picked.map((p) => relatedOf(p.id, p.key)));
    const gone = new Set(picked.map((p) => Number(p.id)));
    const union = new Set(related.flat().filter((id) => !gone.has(id)));
    const count = async (sql: string, params: unknown[] = []) => Number((await db.pool.query<{ n: string }>(sql, params)).rows[0]!.n);
    const invalidations = () => count('SELECT count(*) AS n FROM derived_invalidations');
    const ownRelations = () => count('SELECT count(*) AS n FROM relations WHERE from_id = ANY($1::bigint[])', [[...gone]]);
    const relationsBefore = await ownRelations();

    const notedBefore = await invalidations();
    const outcomes = [];
    for (const p of picked) {
      const args = { key: p.key, opId: `deferred/${p.key}` };
      const { outcome } = await deleteRecordForRound(db.pool, args);
      assert.deepEqual((await deleteRecordForRound(db.pool, args)).outcome, outcome, 'a retried delete returns the first outcome');
      assert.deepEqual([outcome.deleted, outcome.plannedByRound, outcome.dataSourceKey], [true, true, ds]);
      outcomes.push(outcome);
    }
    assert.equal(await count('SELECT count(*) AS n FROM registry_objects WHERE id = ANY($1::bigint[])', [[...gone]]), 0);
    assert.equal(await ownRelations(), relationsBefore, 'the relations stay for the round');
    assert.equal(await invalidations(), notedBefore, 'the deletes note no invalidation: their round does');

    const args = { opIds: [], dataSourceKey: ds, batchSize: 7 };
    const first = await planRound(db.pool, { ...args, roundId: 'deferred-round/1' });
    assert.deepEqual(first.opIds, outcomes.map((o) => o.opId).sort());
    assert.deepEqual([first.affected, first.batches], [union.size, Math.ceil(union.size / 7)]);
    assert.equal(await invalidations(), notedBefore + union.size, 'one invalidation per related record, before any batch');
    // The first round never completes: the next plans the same work from the relations still in place.
    const second = await planRound(db.pool, { ...args, roundId: 'deferred-round/2' });
    assert.deepEqual([second.opIds, second.affected], [first.opIds, first.affected]);
    const planned = await db.pool.query<{ record_id: string }>('SELECT record_id FROM followup_items WHERE op_id = $1', ['deferred-round/2']);
    assert.deepEqual(new Set(planned.rows.map((r) => Number(r.record_id))), union);

    const noted = await invalidations();
    await completeRound(db.pool, 'deferred-round/2', second.opIds);
    assert.equal(await ownRelations(), 0, 'the completed round removed the deleted records’ relations');
    assert.equal(await invalidations(), noted, 'their removal notes nothing more');
    for (const [i, o] of outcomes.entries()) {
      const done = await operationOutcome(db.pool, o.opId);
      assert.equal((done as { affected: number }).affected, related[i]!.filter((id) => !gone.has(id)).length, o.key);
    }

    // Nothing points at a record without relations, and it points nowhere: nothing to follow up, no round.
    const { rows: lone } = await db.pool.query<{ id: number }>(
      "INSERT INTO registry_objects (key, class, data_source_id, title) SELECT 'alone/1', 'party', id, 'Alone' FROM data_sources LIMIT 1 RETURNING id",
    );
    const { outcome: alone } = await deleteRecordForRound(db.pool, { key: 'alone/1', opId: 'deferred/alone' });
    assert.deepEqual([alone.deleted, alone.plannedByRound, alone.affected, alone.batches], [true, undefined, 0, 0]);
    assert.deepEqual(await operationOutcome(db.pool, 'deferred/alone'), { qualityChanges: {}, reindexed: 0, recached: 0, coalescedWith: 1, affected: 0 });
    assert.equal(await count('SELECT count(*) AS n FROM registry_objects WHERE id = $1', [lone[0]!.id]), 0);
  });

  it('2,001 deferred deletions queued at once: a round takes 2,000, the next the last; each operation counts its own related records, and the rounds plan their union', async () => {
    const big = await createTestDatabase();
    try {
      const [ds] = (await seedRegistry(big.pool, { records: 3000, dataSources: 1, hubs: 2, hubSize: 400, seed: 67 })).dataSources;
      const victims = (
        await big.pool.query<{ id: string; key: string }>(`SELECT id, key FROM registry_objects ro
          WHERE EXISTS (SELECT 1 FROM relations WHERE from_id = ro.id) OR EXISTS (SELECT 1 FROM relations WHERE to_key = ro.key)
          ORDER BY id LIMIT 2001`)
      ).rows;
      const victimIds = victims.map((v) => Number(v.id));
      // What each deletion should count: its related records (either direction) that outlive the burst.
      const { rows: related } = await big.pool.query<{ key: string; ids: string[] }>(
        `SELECT ro.key, coalesce(array_agg(DISTINCT rr.related_id) FILTER (WHERE NOT rr.related_id = ANY($1::bigint[])), '{}') AS ids
           FROM registry_objects ro, related_records(ro.id, ro.key) rr WHERE ro.id = ANY($1::bigint[]) GROUP BY ro.key`,
        [victimIds],
      );
      const expected = new Map(related.map((r) => [r.key, r.ids.map(Number)]));
      // Eight at a time, as concurrent callers would.
      for (let i = 0; i < victims.length; i += 8)
        await Promise.all(victims.slice(i, i + 8).map((v) => deleteRecordForRound(big.pool, { key: v.key, opId: `burst/${v.key}` })));
      const queued = (
        await big.pool.query("SELECT 1 FROM registry_operations WHERE handed_off_at IS NOT NULL AND completed_at IS NULL AND kind = 'DELETE_RECORD'")
      ).rowCount!;
      assert.equal(queued, 2001, 'each deletion, of a record with relations, is queued for a round');

      const args = { opIds: [], dataSourceKey: ds!, batchSize: 500 };
      const workList = async (roundId: string) =>
        (await big.pool.query<{ record_id: string }>('SELECT record_id FROM followup_items WHERE op_id = $1', [roundId])).rows.map((r) => Number(r.record_id));
      const first = await planRound(big.pool, { ...args, roundId: 'big/1' });
      assert.equal(first.opIds.length, MAX_OPS_PER_ROUND);
      assert.equal(first.more, true);
      const firstWork = await workList('big/1');
      assert.equal(firstWork.length, first.affected);
      await completeRound(big.pool, 'big/1', first.opIds);
      const second = await planRound(big.pool, { ...args, roundId: 'big/2' });
      assert.deepEqual([second.opIds.length, second.more], [queued - MAX_OPS_PER_ROUND, false]);
      const secondWork = await workList('big/2');
      await completeRound(big.pool, 'big/2', second.opIds);

      const { rows: counted } = await big.pool.query<{ record_key: string; affected_count: number }>(
        "SELECT record_key, affected_count FROM registry_operations WHERE op_id LIKE 'burst/%' AND deleted_record_id IS NOT NULL",
      );
      const wrong = counted.filter((o) => o.affected_count !== new Set(expected.get(o.record_key) ?? []).size);
      assert.deepEqual(wrong, [], 'each operation counts its own surviving related records');
      const union = [...new Set([...expected.values()].flat())].sort((a, b) => a - b);
      assert.deepEqual(
        [...new Set([...firstWork, ...secondWork])].sort((a, b) => a - b),
        union,
        'the two rounds plan exactly the surviving related records',
      );
      assert.equal(
        (await big.pool.query('SELECT 1 FROM relations r JOIN registry_operations o ON o.deleted_record_id = r.from_id')).rowCount,
        0,
        'the rounds removed the deleted records’ relations',
      );
    } finally {
      await big.drop();
    }
  });
});

describe('waking the coalescer only when it sleeps, in PostgreSQL', () => {
  let db: TestDatabase;
  let ds: string;
  let deletable: string[];

  before(async () => {
    db = await createTestDatabase();
    ds = (await seedRegistry(db.pool, { records: 200, dataSources: 1, hubs: 1, hubSize: 10, seed: 71 })).dataSources[0]!;
    deletable = (
      await db.pool.query<{ key: string }>(
        "SELECT key FROM registry_objects ro WHERE key NOT LIKE '%hub%' AND EXISTS (SELECT 1 FROM relations r WHERE r.from_id = ro.id) ORDER BY id LIMIT 8",
      )
    ).rows.map((r) => r.key);
  });
  after(async () => db?.drop());

  const remove = (i: number) => deleteRecordForRound(db.pool, { key: deletable[i]!, opId: `awake/${i}` });
  const round = (n: number) => planRound(db.pool, { roundId: `awake-round/${n}`, opIds: [], dataSourceKey: ds, batchSize: 50 });
  /**
   * Until a statement of this database whose text holds `fragment` waits for a lock: the statement
   * under test is held behind the open transaction (it times out, failing the test, if it is not).
   */
  const waitsForALock = (fragment: string) =>
    eventually(
      async () =>
        (
          await db.pool.query("SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND strpos(query, $1) > 0", [
            fragment,
          ])
        ).rowCount! > 0,
      10_000,
      20,
    );

  it('wakes a sleeping coalescer, not an awake one; after a round it goes on while deletions wait unclaimed, and sleeps when none does', async () => {
    assert.equal((await remove(0)).coalescerAwake, false, 'no round planned yet: the deletion wakes it');
    const first = await round(1);
    assert.deepEqual(first.opIds, ['awake/0']);
    assert.equal((await remove(1)).coalescerAwake, true, 'a round is under way: no wake-up');
    await completeRound(db.pool, 'awake-round/1', first.opIds);
    assert.deepEqual(await coalescerMaySleep(db.pool, ds), { more: true }, 'awake/1 waits unclaimed');
    assert.equal((await remove(2)).coalescerAwake, true, 'still awake');
    const second = await round(2);
    assert.deepEqual(second.opIds, ['awake/1', 'awake/2']);
    await completeRound(db.pool, 'awake-round/2', second.opIds);
    assert.deepEqual(await coalescerMaySleep(db.pool, ds), { more: false });
    assert.equal((await remove(3)).coalescerAwake, false, 'asleep: the deletion wakes it');
    // A mark past its time (a coalescer terminated mid-round) is not trusted.
    const third = await round(3);
    await db.pool.query("UPDATE coalescer_awake SET awake_until = now() - interval '1 second'");
    assert.equal((await remove(4)).coalescerAwake, false, 'an expired mark: the deletion wakes it');
    await completeRound(db.pool, 'awake-round/3', third.opIds);
    assert.deepEqual(await coalescerMaySleep(db.pool, ds), { more: true }, 'awake/4 waits unclaimed');
    const fourth = await round(4);
    await completeRound(db.pool, 'awake-round/4', fourth.opIds);
    assert.deepEqual(await coalescerMaySleep(db.pool, ds), { more: false });
  });

  it('the check before sleeping waits for a deletion that read the coalescer awake, and then sees it', async () => {
    const planned = await round(10);
    const deletion = await db.pool.connect();
    try {
      // The deletion's transaction, held open after reading the mark (as deleteRecordForRound reads it, last).
      await deletion.query('BEGIN');
      await deletion.query(
        `INSERT INTO registry_operations (op_id, kind, record_key, data_source_id, handed_off_at)
         SELECT 'awake/held', 'DELETE_RECORD', 'held', id, now() FROM data_sources WHERE key = $1`,
        [ds],
      );
      const mark = await deletion.query('SELECT awake_until > now() AS awake FROM coalescer_awake FOR KEY SHARE');
      assert.equal(mark.rows[0]?.awake, true);
      await completeRound(db.pool, 'awake-round/10', planned.opIds);
      const check = coalescerMaySleep(db.pool, ds);
      await waitsForALock('coalescer_awake WHERE data_source_id = $1 FOR UPDATE');
      await deletion.query('COMMIT');
      assert.deepEqual(await check, { more: true }, 'the check saw the operation that did not wake it');
    } finally {
      deletion.release();
    }
    const next = await round(11);
    assert.deepEqual(next.opIds, ['awake/held']);
    await completeRound(db.pool, 'awake-round/11', next.opIds);
    assert.deepEqual(await coalescerMaySleep(db.pool, ds), { more: false });
  });

  it('a deletion that comes during the check waits for it, and finding the coalescer asleep, wakes it', async () => {
    await round(20);
    const sleeper = await db.pool.connect();
    try {
      // The check's transaction, held open after it found nothing and removed the mark.
      await sleeper.query('BEGIN');
      await sleeper.query('SELECT 1 FROM coalescer_awake FOR UPDATE');
      await sleeper.query('DELETE FROM coalescer_awake');
      const deletion = remove(5);
      await waitsForALock('coalescer_awake WHERE data_source_id = $1 FOR KEY SHARE');
      await sleeper.query('COMMIT');
      assert.equal((await deletion).coalescerAwake, false, 'the mark is gone: the deletion wakes the coalescer');
    } finally {
      sleeper.release();
    }
  });
});
