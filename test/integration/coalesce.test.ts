/**
 * Bursts coalesce: the deletions of one data source hand their follow-up to that data source's
 * coalescer, which processes the union of their records once per round. Nothing is lost when the
 * worker stops in the middle of a burst. A deletion does not wake a coalescer that is awake; its
 * round still comes, and a caller without the database is not told it ended before it did.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import type { RegistryClient } from '../../src/client/registry.ts';
import type { PoolClient } from '../../src/db/pool.ts';
import { seedRegistry, type SeedSummary } from '../../src/registry/seed.ts';
import { operationOutcome } from '../../src/registry/operations.ts';
import { createFollowUpActivities } from '../../src/activities/followup.ts';
import { STATUS_TRANSITIONS, type RecordStatus } from '../../src/shared.ts';
import { coalescerWorkflowId } from '../../src/client/workflow-ids.ts';
import { coalescerStateQuery, followUpStatusQuery } from '../../src/workflows/definitions.ts';
import {
  assertDerivedStateIsCurrent,
  createTestDatabase,
  deleteOneWhileTheOthersRoundPlans,
  eventually,
  recordsUnrelatedTo,
  recordsWithRelations,
  relatedIdsOfRecord,
  startTestWorker,
  temporalAddress,
  testClient,
  uniqueName,
  visibilityWrites,
  type TestDatabase,
} from '../helpers.ts';

describe('coalesced follow-up of bursts', () => {
  let db: TestDatabase;
  let seeded: SeedSummary;

  before(async () => {
    db = await createTestDatabase();
    seeded = await seedRegistry(db.pool, { records: 1500, dataSources: 2, hubs: 2, hubSize: 120, seed: 23 });
  });
  after(async () => db?.drop());

  const victims = (ds: string, n: number, offset = 0) => recordsWithRelations(db.pool, ds, n, offset);
  const relatedIdsOf = (key: string) => relatedIdsOfRecord(db.pool, key);
  const unrelatedVictims = (ds: string, key: string, relatedIds: string[], n: number) => recordsUnrelatedTo(db.pool, ds, key, relatedIds, n);

  /** The data source's awake mark, with a condition on it. */
  const awakeMark = (ds: string, condition = '') =>
    db.pool.query(`SELECT 1 FROM coalescer_awake a JOIN data_sources d ON d.id = a.data_source_id WHERE d.key = $1 ${condition}`, [ds]);

  /**
   * Deletes `key` and holds its round in its batch (its related records locked in `locker`'s open
   * transaction) once the round's plan has committed: the coalescer is then marked awake.
   */
  const deleteAndHoldItsRound = async (client: RegistryClient, locker: PoolClient, ds: string, key: string, relatedIds: string[]) => {
    await locker.query('BEGIN');
    await locker.query('SELECT 1 FROM registry_objects WHERE id = ANY($1::bigint[]) FOR UPDATE', [relatedIds]);
    const deletion = await client.deleteRecord(key);
    await eventually(async () => (await awakeMark(ds, 'AND awake_until > now()')).rowCount! > 0, 15_000, 50);
    return deletion;
  };

  /** The history of a deletion's run, once it has ended. */
  const endedHistory = async (client: RegistryClient, deletion: { workflowId: string; runId: string }) => {
    const run = client.client.workflow.getHandle(deletion.workflowId, deletion.runId);
    await run.result();
    return (await run.fetchHistory()).events ?? [];
  };

  /**
   * A worker that counts follow-ups stranded after `strandedAfter` (2 minutes by default, so that the
   * sweep comes within a test), a client, and a deletion whose round is held in its batch, with `n`
   * records unrelated to it for deleting meanwhile. `close` ends the hold and stops them.
   */
  const sweepingWorkerWithHeldRound = async (strandedAfter: string, offset: number, n: number) => {
    const worker = await startTestWorker(db.pool, undefined, { FOLLOWUP_STRANDED_AFTER: strandedAfter });
    const client = await testClient(worker.taskQueue, { batchSize: 100, concurrency: 2, coalesce: { quietMs: 200, maxWaitMs: 1000 } }, db.pool);
    const locker = await db.pool.connect();
    const close = async () => {
      await locker.query('ROLLBACK').catch(() => {});
      locker.release();
      await client.close();
      await worker.stop();
    };
    try {
      const ds = seeded.dataSources[1]!;
      const [first] = await victims(ds, 1, offset);
      const relatedIds = await relatedIdsOf(first!);
      const others = await unrelatedVictims(ds, first!, relatedIds, n);
      const held = await deleteAndHoldItsRound(client, locker, ds, first!, relatedIds);
      return { worker, client, locker, ds, first: first!, others, held, close };
    } catch (err) {
      await close();
      throw err;
    }
  };

  it('a burst of 40 deletions in one data source is processed in a few rounds, each record once per round', async () => {
    const worker = await startTestWorker(db.pool);
    const client: RegistryClient = await testClient(worker.taskQueue, { batchSize: 100, concurrency: 2, coalesce: { quietMs: 300, maxWaitMs: 3000 } }, db.pool);
    try {
      const ds = seeded.dataSources[0]!;
      const keys = await victims(ds, 40);
      // The distinct records the 40 deletions affect together (each counted once), before they go.
      const distinct = (
        await db.pool.query(
          `SELECT count(DISTINCT rr.related_id)::int AS n FROM registry_objects ro, related_records(ro.id, ro.key) rr
          WHERE ro.key = ANY($1) AND rr.related_key <> ALL($1)`,
          [keys],
        )
      ).rows[0].n as number;
      await Promise.all(keys.map((k) => client.deleteRecord(k)));
      const results = await Promise.all(keys.map((k) => client.awaitDeletion(k)));
      const sumAffected = results.reduce((n, r) => n + r.affected, 0);
      const state = await client.client.workflow.getHandle(coalescerWorkflowId(ds, worker.taskQueue)).query(coalescerStateQuery);
      assert.equal(state.operations, 40);
      assert.ok(state.rounds <= 5, `${state.rounds} rounds for 40 deletions issued at once`);
      // Each round processes its operations' union once: at least every distinct record, at most once per round,
      // and fewer than one pass per deletion (they overlap).
      assert.ok(
        state.recordsProcessed >= distinct && state.recordsProcessed <= distinct * state.rounds,
        `processed ${state.recordsProcessed} records; ${distinct} distinct, ${state.rounds} rounds`,
      );
      assert.ok(
        sumAffected > distinct && state.recordsProcessed < sumAffected,
        `processed ${state.recordsProcessed} records for ${sumAffected} affected by the deletions one by one`,
      );
      assert.ok(
        results.some((r) => (r.coalescedWith ?? 1) > 1),
        'deletions shared rounds',
      );
      const open = await db.pool.query('SELECT count(*)::int AS n FROM registry_operations WHERE completed_at IS NULL');
      assert.equal(open.rows[0].n, 0, 'every operation and round is complete');
      assert.equal((await db.pool.query('SELECT count(*)::int AS n FROM followup_items')).rows[0].n, 0, 'no work list is left');
      await assertDerivedStateIsCurrent(db.pool);
    } finally {
      await client.close();
      await worker.stop();
    }
  });

  it('a worker stopped in the middle of a burst loses nothing: another worker finishes every follow-up', async () => {
    const taskQueue = uniqueName('registry-tasks-coalesce-restart');
    const first = await startTestWorker(db.pool, taskQueue);
    const client = await testClient(taskQueue, { batchSize: 50, concurrency: 2, coalesce: { quietMs: 200, maxWaitMs: 1000 } }, db.pool);
    try {
      const ds = seeded.dataSources[1]!;
      const keys = await victims(ds, 30, 5);
      const answered = Promise.all(keys.map((k) => client.deleteRecord(k)));
      await eventually(
        async () => (await db.pool.query('SELECT count(*)::int AS n FROM registry_operations WHERE completed_at IS NULL')).rows[0].n >= 10,
        30_000,
        50,
      );
      await first.stop();
      const second = await startTestWorker(db.pool, taskQueue);
      try {
        const outcomes = await answered;
        const results = await Promise.all(keys.map((k, i) => client.awaitDeletion(k, outcomes[i]!.runId)));
        // Each caller gets its own deletion's figures, and real totals survived the lost worker (its
        // related records' renderings list the deleted record, so they changed).
        const counted = await db.pool.query<{ op_id: string; affected_count: number }>(
          'SELECT op_id, affected_count FROM registry_operations WHERE op_id = ANY($1::text[])',
          [outcomes.map((o) => o.opId)],
        );
        const countedOf = new Map(counted.rows.map((r) => [r.op_id, r.affected_count]));
        results.forEach((r, i) => assert.equal(r.affected, countedOf.get(outcomes[i]!.opId), keys[i]));
        assert.ok(
          results.filter((r) => r.affected > 0).every((r) => r.recached > 0),
          'every follow-up reports the renderings it rewrote',
        );
        const state = await client.client.workflow.getHandle(coalescerWorkflowId(ds, taskQueue)).query(coalescerStateQuery);
        assert.equal(state.operations, 30);
        assert.equal((await db.pool.query('SELECT count(*)::int AS n FROM registry_operations WHERE completed_at IS NULL')).rows[0].n, 0);
        await assertDerivedStateIsCurrent(db.pool);
      } finally {
        await second.stop();
      }
    } finally {
      await client.close();
    }
  });

  it('an operation is never reported unknown between its hand-off and its round: queued, then processing while the round is planned', async () => {
    const worker = await startTestWorker(db.pool);
    const client = await testClient(worker.taskQueue, { batchSize: 100, concurrency: 2, coalesce: { quietMs: 1000, maxWaitMs: 2000 } });
    const locker = await db.pool.connect();
    try {
      const ds = seeded.dataSources[0]!;
      const [key] = await victims(ds, 1, 60);
      const outcome = await client.deleteRecord(key!);
      const coalescer = client.client.workflow.getHandle(coalescerWorkflowId(ds, worker.taskQueue));
      // The deletion wakes (here: starts) its coalescer after its caller's answer.
      await eventually(() =>
        coalescer.describe().then(
          () => true,
          () => undefined,
        ),
      );
      // The round's plan reads the work lists: hold them so the round stays in its planning step.
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE followup_items IN ACCESS EXCLUSIVE MODE');
      const seen = new Set<string>();
      const deadline = Date.now() + 3000;
      while (Date.now() < deadline) {
        seen.add((await coalescer.query(followUpStatusQuery, outcome.opId)).state);
        await new Promise((r) => setTimeout(r, 25));
      }
      assert.ok(
        [...seen].every((s) => s === 'queued' || s === 'processing'),
        `states seen: ${[...seen].join(', ')}`,
      );
      assert.ok(seen.has('processing'), `the round took the operation while its plan waited (seen: ${[...seen].join(', ')})`);
      await locker.query('COMMIT');
      const result = await client.awaitDeletion(key!);
      assert.ok(result.reindexed > 0, 'the totals of the round that covered it');
      await assertDerivedStateIsCurrent(db.pool);
    } finally {
      await locker.query('ROLLBACK').catch(() => {});
      locker.release();
      await client.close();
      await worker.stop();
    }
  });

  /**
   * A deletion whose wake-up signal reaches the coalescer while the round of another is planned,
   * and whose operation that plan claims: it is done with that round, reported done and not
   * queued, and no empty round follows (an empty round would come within a quiet period's maximum).
   */
  const signalledWhilePlanned = async (deliveredWhilePlanning: boolean, offset: number) => {
    const worker = await startTestWorker(db.pool);
    const client = await testClient(worker.taskQueue, { batchSize: 100, concurrency: 2, coalesce: { quietMs: 300, maxWaitMs: 1000 } });
    try {
      const ds = seeded.dataSources[0]!;
      const [first] = await victims(ds, 1, offset);
      const [second] = await unrelatedVictims(ds, first!, await relatedIdsOf(first!), 1);
      const where = { dataSourceKey: ds, taskQueue: worker.taskQueue, deliveredWhilePlanning };
      const { firstDeletion, secondDeletion, coalescer } = await deleteOneWhileTheOthersRoundPlans(client, db.pool, where, first!, second!);
      await settledWithin(30_000, 'the two follow-ups', [
        client.awaitDeletion(first!, firstDeletion.runId),
        client.awaitDeletion(second!, secondDeletion.runId),
      ]);
      const rounds = await db.pool.query('SELECT DISTINCT round_id FROM registry_operations WHERE op_id = ANY($1::text[])', [
        [firstDeletion.opId, secondDeletion.opId],
      ]);
      assert.equal(rounds.rowCount, 1, 'the plan claimed both: the second was queued in PostgreSQL before it');
      assert.equal((await coalescer.query(followUpStatusQuery, secondDeletion.opId)).state, 'done', 'done, not queued, once its round ended');
      await new Promise((r) => setTimeout(r, 2000));
      const state = await coalescer.query(coalescerStateQuery);
      assert.deepEqual({ rounds: state.rounds, queued: state.queued }, { rounds: 1, queued: [] }, 'one round, nothing left queued');
      await assertDerivedStateIsCurrent(db.pool);
    } finally {
      await client.close();
      await worker.stop();
    }
  };

  it('an operation whose wake-up signal the coalescer sees after the round that claimed it (one workflow task) is done with that round: no empty round after', async () => {
    await signalledWhilePlanned(false, 140);
  });

  it('an operation whose wake-up signal the coalescer sees while the plan that claims it runs (a workflow task heartbeat) leaves its queue with the plan', async () => {
    await signalledWhilePlanned(true, 170);
  });

  it('a deletion while a round runs does not wake the coalescer; the next round takes it, and a caller without the database waits for that round', async () => {
    const worker = await startTestWorker(db.pool);
    const followUp = { batchSize: 100, concurrency: 2, coalesce: { quietMs: 500, maxWaitMs: 2000 } };
    const withDatabase = await testClient(worker.taskQueue, followUp, db.pool);
    const withoutDatabase = await testClient(worker.taskQueue, followUp);
    const locker = await db.pool.connect();
    try {
      const ds = seeded.dataSources[1]!;
      const [first] = await victims(ds, 1, 50);
      const relatedIds = await relatedIdsOf(first!);
      const [second] = await unrelatedVictims(ds, first!, relatedIds, 1);
      await deleteAndHoldItsRound(withDatabase, locker, ds, first!, relatedIds);
      const late = await withoutDatabase.deleteRecord(second!);
      const events = await endedHistory(withDatabase, late);
      assert.ok(!events.some((e) => e.signalExternalWorkflowExecutionInitiatedEventAttributes), 'no wake-up signal');
      assert.equal(events.filter((e) => e.workflowTaskCompletedEventAttributes).length, 1, 'done in its first workflow task');
      // One patch marker, and the attributes its starter did not set once, at its end: what a burst costs the server.
      assert.deepEqual(await visibilityWrites(withDatabase.client, late.workflowId, late.runId), ['TemporalChangeVersion', 'DataSourceKey,TaskStatus']);
      const coalescer = withDatabase.client.workflow.getHandle(coalescerWorkflowId(ds, worker.taskQueue));
      assert.equal((await coalescer.query(followUpStatusQuery, late.opId)).state, 'queued', 'not unknown while it waits unannounced');
      let learnt = false;
      const awaited = withoutDatabase.awaitDeletion(second!, late.runId).then((r) => ((learnt = true), r));
      await new Promise((r) => setTimeout(r, 1000));
      assert.equal(learnt, false, 'a caller without the database is not told it ended while its round is held');
      await locker.query('COMMIT');
      const result = await awaited;
      assert.ok(result.reindexed > 0, `the totals of the round that took it: ${JSON.stringify(result)}`);
      const done = await db.pool.query<{ completed_at: Date | null }>('SELECT completed_at FROM registry_operations WHERE op_id = $1', [late.opId]);
      assert.ok(done.rows[0]?.completed_at, 'its operation completed');
      const state = await coalescer.query(coalescerStateQuery);
      assert.equal(state.operations, 2);
      await eventually(async () => (await awakeMark(ds)).rowCount === 0, 15_000, 50);
      await assertDerivedStateIsCurrent(db.pool);
    } finally {
      await locker.query('ROLLBACK').catch(() => {});
      locker.release();
      await withoutDatabase.close();
      await withDatabase.close();
      await worker.stop();
    }
  });

  // Before the sweep this hung once: the terminated run's check before sleeping renewed the mark
  // after the test had expired it, the third deletion trusted it, and nothing woke a coalescer again.
  it('a coalescer terminated mid-round while marked awake: the sweep for stranded follow-ups starts a new run, which takes every operation left, one queued later trusting the mark too', async () => {
    const { worker, client, locker, ds, first, others, held, close } = await sweepingWorkerWithHeldRound('2 seconds', 80, 2);
    const [second, third] = others;
    try {
      const unannounced = await client.deleteRecord(second!);
      const events = await endedHistory(client, unannounced);
      assert.ok(!events.some((e) => e.signalExternalWorkflowExecutionInitiatedEventAttributes), 'the coalescer was marked awake: no wake-up');
      const coalescer = client.client.workflow.getHandle(coalescerWorkflowId(ds, worker.taskQueue));
      const terminatedRun = (await coalescer.describe()).runId;
      await coalescer.terminate('the test: terminated mid-round');
      // The terminated run's round may still finish on the worker (its local activities do not
      // learn of the termination) and mark the coalescer awake again: this deletion may then
      // trust a mark nobody honours, as in the hang this test once met before the sweep.
      await locker.query('ROLLBACK');
      const trusting = await client.deleteRecord(third!);
      const thirdEvents = await endedHistory(client, trusting);
      assert.ok(!thirdEvents.some((e) => e.signalExternalWorkflowExecutionInitiatedEventAttributes), 'the mark, still trusted, kept it from waking anyone');
      // Bounded: a stranded operation must fail the test, not hang it (the sweep comes every 0.5 s).
      const results = await settledWithin(30_000, 'the three follow-ups', [
        client.awaitDeletion(first!, held.runId),
        client.awaitDeletion(second!, unannounced.runId),
        client.awaitDeletion(third!, trusting.runId),
      ]);
      // (The first may have been completed by the terminated run: its local activities go on after the termination.)
      results.forEach((r, i) => assert.ok(r.reindexed > 0, `deletion ${i + 1} was followed up: ${JSON.stringify(r)}`));
      assert.notEqual((await coalescer.describe()).runId, terminatedRun, 'a new coalescer run took over');
      const open = await db.pool.query('SELECT op_id FROM registry_operations WHERE op_id = ANY($1::text[]) AND completed_at IS NULL', [
        [held.opId, unannounced.opId, trusting.opId],
      ]);
      assert.deepEqual(open.rows, [], 'every operation completed');
      await assertDerivedStateIsCurrent(db.pool);
    } finally {
      await close();
    }
  });
  it("the sweep leaves a live coalescer's long round alone, and names to it an operation queued meanwhile without a signal", async () => {
    // Stranded after 4 s (a sweep every second): past the time a round takes to claim its operation, even on the cluster.
    const setupStarted = Date.now();
    const { worker, client, ds, locker, first, others, held, close } = await sweepingWorkerWithHeldRound('4 seconds', 110, 1);
    // Claimed within this (the round's plan had committed): a sweep before the claim could name it, legitimately.
    const namedBeforeClaim = Math.max(0, Math.ceil((Date.now() - setupStarted - 4000) / 1000));
    const [second] = others;
    try {
      // The held operation alone, past the limit for two or three sweeps.
      await new Promise((r) => setTimeout(r, 6500));
      const unannounced = await client.deleteRecord(second!);
      await new Promise((r) => setTimeout(r, 5500));
      await locker.query('ROLLBACK');
      await settledWithin(30_000, 'the two follow-ups', [client.awaitDeletion(first, held.runId), client.awaitDeletion(second!, unannounced.runId)]);
      // Read once the round has ended: signals that came during its workflow task were held by the server until then.
      const named = await signalledOpIds(client.client.workflow.getHandle(coalescerWorkflowId(ds, worker.taskQueue)));
      const heldNamed = named.filter((op) => op === held.opId).length;
      assert.ok(
        heldNamed >= 1 && heldNamed <= 1 + namedBeforeClaim,
        `the held operation was named by its hand-off, not by the sweep: ${JSON.stringify(named)}`,
      );
      assert.ok(named.includes(unannounced.opId), `the operation queued unannounced was named to the live coalescer: ${JSON.stringify(named)}`);
      await assertDerivedStateIsCurrent(db.pool);
    } finally {
      await close();
    }
  });

  it('an operation whose hand-off died between its commit and its queuing, its workflow then gone, is queued by its commit, and the sweep gets it followed up', async () => {
    const ds = seeded.dataSources[0]!;
    const [key] = await victims(ds, 1, 200);
    const opId = `${uniqueName('gone-before-hand-off')}/run`;
    const { status } = (await db.pool.query<{ status: RecordStatus }>('SELECT status FROM registry_objects WHERE key = $1', [key])).rows[0]!;
    const to = STATUS_TRANSITIONS[status][0]!;
    // The hand-off activity itself, its process dying after the change committed and before it queued
    // the operation (PostgreSQL refuses that step for this operation); its workflow is then terminated,
    // so no retry ever hands the operation off.
    await db.pool.query(`CREATE FUNCTION test_dies_before_queue() RETURNS trigger LANGUAGE plpgsql AS $$
                           BEGIN RAISE EXCEPTION 'the process died before queuing %', NEW.op_id; END $$`);
    await db.pool.query(`CREATE TRIGGER test_dies_before_queue BEFORE UPDATE ON registry_operations FOR EACH ROW
                           WHEN (NEW.op_id = '${opId}' AND current_query() LIKE '%SET handed_off_at = coalesce(handed_off_at, now())%')
                           EXECUTE FUNCTION test_dies_before_queue()`);
    const client = new Client({ connection: await Connection.connect({ address: temporalAddress() }) });
    try {
      const handOff = createFollowUpActivities({ pool: db.pool, temporal: client, taskQueue: uniqueName('gone') });
      await assert.rejects(handOff.applyOperationAndHandOff({ op: { kind: 'CHANGE_STATUS', key: key!, to }, opId, batchSize: 50 }), /died before queuing/);
    } finally {
      await db.pool.query('DROP TRIGGER test_dies_before_queue ON registry_operations; DROP FUNCTION test_dies_before_queue()');
      await client.connection.close();
    }
    const row = await db.pool.query('SELECT handed_off_at IS NOT NULL AS queued, batch_count FROM registry_operations WHERE op_id = $1', [opId]);
    assert.deepEqual(row.rows[0], { queued: true, batch_count: 1 }, 'committed and queued by the same transaction');
    const worker = await startTestWorker(db.pool, undefined, { FOLLOWUP_STRANDED_AFTER: '1 second' });
    try {
      await eventually(async () => (await operationOutcome(db.pool, opId)) !== undefined, 30_000, 100);
      const indexed = await db.pool.query('SELECT ri.status FROM record_index ri JOIN registry_objects ro ON ro.id = ri.record_id WHERE ro.key = $1', [key]);
      assert.equal(indexed.rows[0]?.status, to, 'the follow-up reindexed the record with its new status');
      await assertDerivedStateIsCurrent(db.pool);
    } finally {
      await worker.stop();
    }
  });
});

/** All of `promises`, or a failure naming `what` once `ms` have passed. */
async function settledWithin<T>(ms: number, what: string, promises: Array<Promise<T>>): Promise<T[]> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} did not end within ${ms} ms`)), ms)));
  try {
    return await Promise.race([Promise.all(promises), late]);
  } finally {
    clearTimeout(timer);
  }
}

/** The operations named by the signals in a workflow's history, in order. */
async function signalledOpIds(handle: WorkflowHandle) {
  const { events } = await handle.fetchHistory();
  return (events ?? []).flatMap((e) => {
    const data = e.workflowExecutionSignaledEventAttributes?.input?.payloads?.[0]?.data;
    return data ? [(JSON.parse(Buffer.from(data).toString()) as { opId?: string }).opId ?? ''] : [];
  });
}
