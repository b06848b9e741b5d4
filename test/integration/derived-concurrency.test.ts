/**
 * Two writers of one record's derived state at once: a registry change (with its follow-up) and a
 * GENERATE_CACHE-style regeneration that starts while the change is uncommitted. Without the
 * record locks every writer takes first (lockRecords), the regeneration computed the rendering from
 * before the change, waited for the change's cache row and then stored that stale rendering over
 * the fresh one: a lost update. Seen as one stale cache entry after the PostgreSQL-outage fault test.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { recheckQuality, regenerateCache, reindexRecords, withRecordsLocked } from '../../src/registry/derived.ts';
import { seedRegistry } from '../../src/registry/seed.ts';
import { assertDerivedStateIsCurrent, createTestDatabase, eventually, type TestDatabase } from '../helpers.ts';

describe('concurrent writers of derived state', () => {
  let db: TestDatabase;
  before(async () => {
    db = await createTestDatabase();
    await seedRegistry(db.pool, { records: 200, dataSources: 1, hubs: 1, hubSize: 20, seed: 5 });
  });
  after(async () => db?.drop());

  /** Runs `writer` while a change to record `id` (its status, and its follow-up) is open, then commits the change. */
  const raceAgainstChange = async (id: number, status: string, writer: () => Promise<unknown>) => {
    const change = await db.pool.connect();
    try {
      await change.query('BEGIN');
      await change.query('UPDATE registry_objects SET status = $2 WHERE id = $1', [id, status]);
      await recheckQuality(change, [id]);
      await reindexRecords(change, [id]);
      await regenerateCache(change, [id]);
      const writing = writer();
      // The writer is now blocked behind the open change.
      await eventually(
        async () =>
          (await db.pool.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'")).rows[0].n >
          0,
        10_000,
        20,
      );
      await change.query('COMMIT');
      await writing;
    } finally {
      change.release();
    }
  };

  it('a regeneration that started during a change stores the changed rendering, not the one from before it', async () => {
    const { id } = (await db.pool.query<{ id: number }>("SELECT id FROM registry_objects WHERE status <> 'APPROVED' ORDER BY id LIMIT 1")).rows[0]!;
    for (const [what, step, status] of [
      ['cache', regenerateCache, 'APPROVED'],
      ['index', reindexRecords, 'PUBLISHED'],
    ] as const) {
      await raceAgainstChange(id, status, () => withRecordsLocked(db.pool, [id], step));
      const cache = (await db.pool.query('SELECT rendering FROM record_cache WHERE record_id = $1', [id])).rows[0].rendering;
      const index = (await db.pool.query('SELECT status FROM record_index WHERE record_id = $1', [id])).rows[0].status;
      assert.deepEqual([cache.status, index], [status, status], what);
      await assertDerivedStateIsCurrent(db.pool);
    }
  });
});
