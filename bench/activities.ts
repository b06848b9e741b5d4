/** Activities of the baseline workflows. */
import { withTransaction, type Pool } from '../src/db/pool.ts';
import { deleteRecordLeavingRelations } from '../src/registry/operations.ts';

/**
 * Deletes a record (and its index and cache rows) in one transaction, planning nothing: the same
 * statements as our deletion, without its operation row (nothing records the follow-up).
 */
export async function bareDeleteSql(pool: Pool, key: string): Promise<boolean> {
  return withTransaction(pool, async (tx) => {
    const { rows } = await tx.query<{ id: number }>('SELECT id FROM registry_objects WHERE key = $1 FOR UPDATE', [key]);
    if (!rows[0]) return false;
    await deleteRecordLeavingRelations(tx, rows[0].id);
    return true;
  });
}

export const createBenchActivities = (pool: Pool) => ({
  async bareDelete(key: string): Promise<boolean> {
    return bareDeleteSql(pool, key);
  },
  async noop(): Promise<void> {},
});

export type BenchActivities = ReturnType<typeof createBenchActivities>;
