/**
 * Prerequisite cycles at the database, with registrations racing: tasks that register with each
 * other at the same moment (two started one after the other, whose admissions a loaded worker runs
 * together) must not both wait. Exactly one edge of every would-be cycle is refused; a cycle that
 * registrations closed before they were serialised is found at a dependant's recheck.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { TaskClient } from '../../src/client/task-client.ts';
import { DEFAULT_POOL_CONNECTIONS } from '../../src/db/pool.ts';
import { chainText, registerDependant } from '../../src/taskmgr/task-store.ts';
import { createTestDatabase, settledTask, startTestWorker, temporalAddress, uniqueName, type TestDatabase } from '../helpers.ts';

/** Registers every edge of a ring of `size` tasks at once; returns how many were refused as a cycle. */
async function raceRing(db: TestDatabase, size: number): Promise<number> {
  const ids = Array.from({ length: size }, () => uniqueName('ring'));
  const results = await Promise.all(ids.map((id, i) => registerDependant(db.pool, ids[(i + 1) % size]!, id)));
  return results.filter((r) => r.cycle).length;
}

/**
 * `races` rings, as many at once as the pool has connections for (a transaction queued for a
 * connection is not racing; the pool's connect timeout is not what is tested).
 */
async function raceRings(db: TestDatabase, size: number, races: number): Promise<number[]> {
  const atOnce = Math.floor(DEFAULT_POOL_CONNECTIONS / size);
  const refused: number[] = [];
  for (let i = 0; i < races; i += atOnce) refused.push(...(await Promise.all(Array.from({ length: Math.min(atOnce, races - i) }, () => raceRing(db, size)))));
  return refused;
}

describe('prerequisite cycles under concurrent registration', () => {
  let db: TestDatabase;
  before(async () => (db = await createTestDatabase()));
  after(async () => db?.drop());

  it('refuses exactly one edge of each two-task cycle registered at once, in 200 races', async () => {
    const refused = await raceRings(db, 2, 200);
    assert.deepEqual(
      refused.filter((n) => n !== 1),
      [],
      'a race where both or neither edge was refused',
    );
  });

  it('refuses exactly one edge of each three-task cycle registered at once, in 100 races', async () => {
    const refused = await raceRings(db, 3, 100);
    assert.deepEqual(
      refused.filter((n) => n !== 1),
      [],
      'a race where no edge, or more than one, was refused',
    );
  });

  it('names the whole chain when it refuses', async () => {
    const [a, b, c] = ['chain-a', 'chain-b', 'chain-c'];
    assert.deepEqual(await registerDependant(db.pool, b, a), {});
    assert.deepEqual(await registerDependant(db.pool, c, b), {});
    assert.deepEqual((await registerDependant(db.pool, a, c)).cycle, [c, a, b, c]);
  });

  it('finds a cycle through a chain of 20,000 tasks, and names its ends in a message of bounded size', { timeout: 120_000 }, async () => {
    // A walk that kept a path per row was capped at 1,000 links: a longer cycle went unseen, and both ends waited for ever.
    const chain = Array.from({ length: 20_000 }, (_, i) => `long-${i}`);
    await db.pool.query(
      'INSERT INTO task_dependants (prerequisite_id, dependant_id) SELECT p, d FROM unnest($1::text[], $2::text[]) AS e(p, d)',
      [chain.slice(1), chain.slice(0, -1)], // long-i waits for long-(i+1)
    );
    // As autovacuum would after such growth: without statistics the planner scans the table at each link (66 s, not 0.1 s).
    await db.pool.query('ANALYZE task_dependants');
    const cycle = (await registerDependant(db.pool, chain[0]!, chain.at(-1)!)).cycle;
    assert.deepEqual(cycle, [chain.at(-1), ...chain]);
    const text = chainText(cycle!);
    assert.equal(text, ['long-19999', 'long-0', 'long-1', 'long-2', 'long-3', '(19991 more)', ...chain.slice(-5)].join(' -> '));
    assert.deepEqual(await registerDependant(db.pool, chain.at(-1)!, 'long-tail'), {}, 'a chain that does not lead back is registered');
  });

  it('ends its walk on a stored cycle that does not lead back to the dependant', async () => {
    // As the unserialised race could leave one: x <-> y, and z registering behind x.
    await db.pool.query("INSERT INTO task_dependants (prerequisite_id, dependant_id) VALUES ('loop-y', 'loop-x'), ('loop-x', 'loop-y')");
    assert.deepEqual(await registerDependant(db.pool, 'loop-x', 'loop-z'), {});
  });

  it('a cycle already in the graph (as the unserialised race left it) fails the dependant at its next recheck', { timeout: 60_000 }, async () => {
    const worker = await startTestWorker(db.pool, undefined, { TASK_PREREQUISITE_RECHECK: '1 second' });
    const tasks = new TaskClient(new Client({ connection: await Connection.connect({ address: temporalAddress() }) }), worker.taskQueue, { pool: db.pool });
    try {
      const prerequisite = await tasks.addNewTask('RUN_QUALITY_CHECK', { dataSourceKey: 'cycle', scheduledFor: '1 hour' });
      const dependant = await tasks.addNewTask('GENERATE_CACHE', { dataSourceKey: 'cycle', prerequisiteTaskId: prerequisite });
      // The other half of the cycle, as a registration that missed the dependant's edge had stored it.
      await db.pool.query('INSERT INTO task_dependants (prerequisite_id, dependant_id) VALUES ($1, $2)', [dependant, prerequisite]);
      const failed = await settledTask(tasks, dependant, 30_000);
      assert.equal(failed.status, 'FAILED');
      assert.equal(failed.error, `prerequisite task ${prerequisite} leads back to this task (${dependant} -> ${prerequisite} -> ${dependant})`);
      await tasks.cancelTask(prerequisite);
    } finally {
      await tasks.close();
      await worker.stop();
    }
  });
});
