/**
 * Waiting for a follow-up by PostgreSQL's notices: a waiter wakes when a completion commits (not
 * before: the notice travels with the transaction), many waiters share one listening connection,
 * and that connection goes back to the pool when nobody waits.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { withTransaction } from '../../src/db/pool.ts';
import { FollowUpNotices, notifyFollowUpDone } from '../../src/registry/followup-notices.ts';
import { createTestDatabase, type TestDatabase } from '../helpers.ts';

describe('follow-up completion notices', () => {
  let db: TestDatabase;
  before(async () => {
    db = await createTestDatabase();
    await db.pool.query('CREATE TABLE done_ops (op_id text PRIMARY KEY)');
  });
  after(async () => db?.drop());

  const isDone = (opId: string) => async () => ((await db.pool.query('SELECT 1 FROM done_ops WHERE op_id = $1', [opId])).rowCount ? opId : undefined);
  const complete = (opId: string, beforeCommit?: () => Promise<void>) =>
    withTransaction(db.pool, async (tx) => {
      await tx.query('INSERT INTO done_ops VALUES ($1)', [opId]);
      await notifyFollowUpDone(tx, opId);
      await beforeCommit?.();
    });

  it('wakes every waiter when a completion commits, on one listening connection, given back after', async () => {
    const notices = new FollowUpNotices(db.pool);
    const woken: string[] = [];
    const waits = ['op-1', 'op-2', 'op-3'].map((op) => notices.waitUntil(isDone(op)).then((v) => woken.push(v)));
    await new Promise((r) => setTimeout(r, 200));
    const { rows } = await db.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND query ILIKE 'LISTEN%'`,
    );
    assert.equal(rows[0]!.n, 1, 'one listening connection for three waiters');

    // Not before the commit: a notice is held back with its transaction.
    await complete('op-2', async () => {
      await new Promise((r) => setTimeout(r, 300));
      assert.deepEqual(woken, []);
    });
    await complete('op-1');
    await complete('op-3');
    await Promise.all(waits);
    assert.deepEqual(woken.sort(), ['op-1', 'op-2', 'op-3']);
    // Nobody waits: the connection is back in the pool, no longer listening.
    const listening = await db.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND query ILIKE 'LISTEN%' AND state <> 'idle'`,
    );
    assert.equal(listening.rows[0]!.n, 0);
  });

  it('answers at once when the follow-up is already done, and again after nobody waited for a while', async () => {
    const notices = new FollowUpNotices(db.pool);
    await complete('op-early');
    assert.equal(await notices.waitUntil(isDone('op-early')), 'op-early');
    const late = notices.waitUntil(isDone('op-late'));
    await complete('op-late');
    assert.equal(await late, 'op-late');
  });

  it('passes on what the check throws (an operation removed by retention)', async () => {
    const notices = new FollowUpNotices(db.pool);
    await assert.rejects(
      notices.waitUntil(async () => {
        throw new Error('operation op-x is not known');
      }),
      /op-x is not known/,
    );
  });
});
