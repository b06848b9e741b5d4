/**
 * Registry changes racing a deletion whose follow-up its coalescer's round plans after the answer:
 * relations added to the deleted key, the key harvested again, its related records changed or
 * deleted, before the round plans and while it runs, and a random mix of all of them at once.
 * Whatever the order: every operation ends, no relation of a deleted record outlives its round, and
 * the derived state equals a full recomputation.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { OperationRefusedError, RecordNotFoundError, type RegistryClient } from '../../src/client/registry.ts';
import { rng, seedRegistry, type SeedSummary } from '../../src/registry/seed.ts';
import { STATUS_TRANSITIONS, type HarvestedRecord, type RecordStatus } from '../../src/shared.ts';
import { assertDerivedStateIsCurrent, createTestDatabase, eventually, startTestWorker, testClient, type TestDatabase, type TestWorker } from '../helpers.ts';

/** Something a caller started and can wait for: a deletion (by its run) or an operation's workflow. */
type Started = { deletion: { key: string; runId: string } } | { operation: string };

describe('changes racing a deferred deletion', () => {
  let db: TestDatabase;
  let seeded: SeedSummary;
  const workers: TestWorker[] = [];
  const clients: RegistryClient[] = [];

  before(async () => {
    db = await createTestDatabase();
    seeded = await seedRegistry(db.pool, { records: 1200, dataSources: 3, hubs: 6, hubSize: 150, seed: 23 });
  });
  after(async () => {
    for (const c of clients) await c.close();
    for (const w of workers) await w.stop();
    await db?.drop();
  });

  /** A worker on a task queue of its own (coalescers of its own, with these settings) and its client. */
  async function registryWith(followUp: { quietMs: number; batchSize: number; concurrency: number }): Promise<RegistryClient> {
    const worker = await startTestWorker(db.pool);
    workers.push(worker);
    const { quietMs, batchSize, concurrency } = followUp;
    const client = await testClient(worker.taskQueue, { batchSize, concurrency, coalesce: { quietMs, maxWaitMs: Math.max(3000, quietMs * 2) } }, db.pool);
    clients.push(client);
    return client;
  }

  const one = async <T>(sql: string, params: unknown[] = []): Promise<T> => (await db.pool.query(sql, params)).rows[0] as T;

  /** A hub not used by an earlier test, with its data source and some of the collections related to it. */
  const used = new Set<string>();
  async function freshHub() {
    const hub = seeded.hubs.find((h) => !used.has(h.key))!;
    used.add(hub.key);
    const { ds } = await one<{ ds: string }>('SELECT d.key AS ds FROM registry_objects ro JOIN data_sources d ON d.id = ro.data_source_id WHERE ro.key = $1', [
      hub.key,
    ]);
    const related = (
      await db.pool.query<{ key: string; status: RecordStatus }>(
        `SELECT rr.related_key AS key, t.status FROM registry_objects ro, related_records(ro.id, ro.key) rr JOIN registry_objects t ON t.id = rr.related_id
          WHERE ro.key = $1 ORDER BY rr.related_key LIMIT 20`,
        [hub.key],
      )
    ).rows;
    return { ...hub, ds, related };
  }

  /** The deletion's operation: claimed by a round yet, and that round finished yet. */
  const deletionState = (opId: string) =>
    one<{ round_id: string | null; round_done: boolean | null }>(
      `SELECT o.round_id, r.completed_at IS NOT NULL AS round_done FROM registry_operations o
         LEFT JOIN registry_operations r ON r.op_id = o.round_id WHERE o.op_id = $1`,
      [opId],
    );

  /** The changes that race the deletion of `hub`: a new record related to its key, the key harvested again, a related record deleted, another's status changed. */
  async function racingChanges(client: RegistryClient, hub: Awaited<ReturnType<typeof freshHub>>, tag: string): Promise<Started[]> {
    const [kept, deleted, restated] = hub.related;
    const pointing: HarvestedRecord = {
      key: `${hub.ds}/collection/${tag}-points-at-hub`,
      class: 'collection',
      title: 'Points at a deleted key',
      relations: [{ key: hub.key, type: 'isOutputOf' }],
    };
    const again: HarvestedRecord = {
      key: hub.key,
      class: hub.class,
      title: 'Harvested again',
      relations: [
        { key: kept!.key, type: 'hasOutput' },
        { key: pointing.key, type: 'hasOutput' },
      ],
    };
    const next = STATUS_TRANSITIONS[restated!.status][0]!;
    const started = await Promise.all([
      client.importRecords(hub.ds, [pointing]),
      client.importRecords(hub.ds, [again]),
      client.deleteRecord(deleted!.key),
      client.changeStatus(restated!.key, next),
    ]);
    return started.map((s) => ('runId' in s ? { deletion: { key: deleted!.key, runId: s.runId } } : { operation: s.workflowId }));
  }

  async function awaitAll(client: RegistryClient, started: Started[]) {
    await Promise.all(started.map((s) => ('deletion' in s ? client.awaitDeletion(s.deletion.key, s.deletion.runId) : client.awaitOperation(s.operation))));
  }

  /** Every operation ended, no deleted record's relations are left, and derived state is what a full recomputation gives. */
  async function assertConverged() {
    // The coalescer's own round rows aside: a wake-up signal delivered after its operation's round
    // had ended (a slow signal) may start an empty round later.
    const open = await db.pool.query("SELECT op_id, kind, round_id FROM registry_operations WHERE completed_at IS NULL AND kind <> 'FOLLOW_UP_ROUND'");
    assert.deepEqual(open.rows, [], 'operations not finished');
    const orphans = await db.pool.query('SELECT from_id, to_key FROM relations r WHERE NOT EXISTS (SELECT 1 FROM registry_objects ro WHERE ro.id = r.from_id)');
    assert.deepEqual(orphans.rows, [], 'relations of deleted records outlived their round');
    await assertDerivedStateIsCurrent(db.pool);
  }

  it('changes committed after the deletion and before its round plans', async () => {
    // A long quiet period: the round plans seconds after the deletion, after the racing changes.
    const client = await registryWith({ quietMs: 4000, batchSize: 50, concurrency: 2 });
    const hub = await freshHub();
    const deletion = await client.deleteRecord(hub.key);
    assert.equal(deletion.plannedByRound, true);
    const started = await racingChanges(client, hub, 'before-plan');
    assert.equal((await deletionState(deletion.opId)).round_id, null, 'the racing changes came too late: the round had already planned');
    await awaitAll(client, [{ deletion: { key: hub.key, runId: deletion.runId } }, ...started]);
    const again = await one<{ title: string }>('SELECT title FROM registry_objects WHERE key = $1', [hub.key]);
    assert.equal(again.title, 'Harvested again');
    await assertConverged();
  });

  it('changes committed while the deletion’s round runs', async () => {
    // Batches of 5, one at a time: the hub's round takes many activities, long enough to race.
    const client = await registryWith({ quietMs: 50, batchSize: 5, concurrency: 1 });
    const hub = await freshHub();
    const deletion = await client.deleteRecord(hub.key);
    await eventually(async () => (await deletionState(deletion.opId)).round_id !== null, 20_000, 20);
    const started = await racingChanges(client, hub, 'during-round');
    assert.equal((await deletionState(deletion.opId)).round_done, false, 'the round ended before the racing changes committed');
    await awaitAll(client, [{ deletion: { key: hub.key, runId: deletion.runId } }, ...started]);
    await assertConverged();
  });

  it('a random mix of deletions, harvests, status changes and draft deletions on the same records at once', async () => {
    const client = await registryWith({ quietMs: 100, batchSize: 20, concurrency: 2 });
    const hubs = [await freshHub(), await freshHub()];
    const keys = hubs.flatMap((h) => [h.key, ...h.related.map((r) => r.key)]);
    const random = rng(77).next;
    const pick = () => keys[Math.floor(random() * keys.length)]!;
    const ds = hubs[0]!.ds;
    const harvest = (key: string): HarvestedRecord => ({
      key,
      class: key.includes('/activity/') ? 'activity' : key.includes('/party/') ? 'party' : 'collection',
      title: `Harvested ${Math.floor(random() * 1000)}`,
      relations: [pick(), pick()].filter((k) => k !== key).map((k) => ({ key: k, type: 'isRelatedTo' })),
    });
    const newKeys = [`${ds}/collection/mix-new-a`, `${ds}/collection/mix-new-b`, `${ds}/collection/mix-new-c`];
    const calls: Array<() => Promise<Started>> = [];
    for (let i = 0; i < 40; i++) {
      const key = pick();
      const r = random();
      if (r < 0.35) calls.push(async () => ({ deletion: { key, runId: (await client.deleteRecord(key)).runId } }));
      else if (r < 0.65)
        calls.push(async () => ({ operation: (await client.importRecords(ds, [harvest(key), harvest(pick())].filter(distinctKeys()))).workflowId }));
      else if (r < 0.85) calls.push(async () => ({ operation: (await client.changeStatus(key, await someNextStatus(key))).workflowId }));
      else calls.push(async () => ({ operation: (await client.deleteDraft(key)).workflowId }));
    }
    // The same new keys harvested in opposite orders by two batches at once: they must not deadlock each other for good.
    calls.push(async () => ({
      operation: (
        await client.importRecords(
          ds,
          newKeys.map((k) => harvest(k)),
        )
      ).workflowId,
    }));
    calls.push(async () => ({
      operation: (
        await client.importRecords(
          ds,
          [...newKeys].reverse().map((k) => harvest(k)),
        )
      ).workflowId,
    }));

    const outcomes = await Promise.allSettled(shuffled(calls, random).map((call) => call()));
    const refused = outcomes.filter((o) => o.status === 'rejected').map((o) => (o as PromiseRejectedResult).reason as Error);
    // Refusals are the racing callers' own: the record went first, or its status moved first.
    for (const err of refused) assert.ok(err instanceof RecordNotFoundError || err instanceof OperationRefusedError, `unexpected failure: ${err}`);
    const started = outcomes.flatMap((o) => (o.status === 'fulfilled' ? [o.value] : []));
    assert.ok(started.length >= 20, `${started.length} of ${calls.length} calls went through`);
    await awaitAll(client, started);
    await assertConverged();
  });

  /** A status the record may move to now (a race may still move it first: then the change is refused). */
  async function someNextStatus(key: string): Promise<RecordStatus> {
    const row = await one<{ status: RecordStatus } | undefined>('SELECT status FROM registry_objects WHERE key = $1', [key]);
    return STATUS_TRANSITIONS[row?.status ?? 'DRAFT'][0]!;
  }
});

/** Keeps the first record of each key: a harvest batch names a key once. */
function distinctKeys() {
  const seen = new Set<string>();
  return (r: HarvestedRecord) => !seen.has(r.key) && seen.add(r.key) !== undefined;
}

function shuffled<T>(items: T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}
