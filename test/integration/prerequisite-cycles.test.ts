/**
 * Prerequisite cycles at the database, with registrations racing: tasks that register with each
 * other at the same moment (two started one after the other, whose admissions a loaded worker runs
 * together) must not both wait. Exactly one edge of every would-be cycle is refused.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { registerDependant } from '../../src/taskmgr/task-store.ts';
import { createTestDatabase, uniqueName, type TestDatabase } from '../helpers.ts';

/** Registers every edge of a ring of `size` tasks at once; returns how many were refused as a cycle. */
async function raceRing(db: TestDatabase, size: number): Promise<number> {
  const ids = Array.from({ length: size }, () => uniqueName('ring'));
  const results = await Promise.all(ids.map((id, i) => registerDependant(db.pool, ids[(i + 1) % size]!, id)));
  return results.filter((r) => r.cycle).length;
}

describe('prerequisite cycles under concurrent registration', () => {
  let db: TestDatabase;
  before(async () => (db = await createTestDatabase()));
  after(async () => db?.drop());

  it('refuses exactly one edge of each two-task cycle registered at once, in 200 races', async () => {
    const refused = await Promise.all(Array.from({ length: 200 }, () => raceRing(db, 2)));
    assert.deepEqual(
      refused.filter((n) => n !== 1),
      [],
      'a race where both or neither edge was refused',
    );
  });

  it('refuses exactly one edge of each three-task cycle registered at once, in 100 races', async () => {
    const refused = await Promise.all(Array.from({ length: 100 }, () => raceRing(db, 3)));
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
});
