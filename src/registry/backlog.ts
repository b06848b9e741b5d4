/** What waits in the registry, per data source: follow-ups handed to their coalescer and not finished, and records in quarantine. */
import { withTransaction, type Pool, type Queryable } from '../db/pool.ts';

export interface FollowUpBacklog {
  dataSourceKey: string;
  queued: number;
  /** Seconds since the oldest of them was handed off. */
  oldestSeconds: number;
}

/** Data sources with follow-ups under way, the most behind first. */
export async function followUpBacklog(db: Queryable): Promise<FollowUpBacklog[]> {
  const { rows } = await db.query<{ data_source_key: string; queued: number; oldest: number }>(
    `SELECT d.key AS data_source_key, count(*)::int AS queued, extract(epoch FROM now() - min(o.handed_off_at))::float8 AS oldest
       FROM registry_operations o JOIN data_sources d ON d.id = o.data_source_id
      WHERE o.completed_at IS NULL AND o.handed_off_at IS NOT NULL
      GROUP BY d.key ORDER BY oldest DESC`,
  );
  return rows.map((r) => ({ dataSourceKey: r.data_source_key, queued: r.queued, oldestSeconds: r.oldest }));
}

/**
 * Records in quarantine per data source key ("" for records without one); with `everyDataSource`,
 * every data source appears, 0 included.
 */
export async function quarantinedByDataSource(db: Queryable, opts: { everyDataSource?: boolean } = {}): Promise<Map<string, number>> {
  const { rows } = await db.query<{ data_source_key: string; n: number }>(
    opts.everyDataSource
      ? `SELECT d.key AS data_source_key, count(q.record_id)::int AS n FROM data_sources d LEFT JOIN quarantined_records q ON q.data_source_id = d.id GROUP BY d.key
         UNION ALL
         SELECT '', count(*)::int FROM quarantined_records WHERE data_source_id IS NULL HAVING count(*) > 0`
      : `SELECT coalesce(d.key, '') AS data_source_key, count(*)::int AS n FROM quarantined_records q LEFT JOIN data_sources d ON d.id = q.data_source_id GROUP BY 1`,
  );
  return new Map(rows.map((r) => [r.data_source_key, r.n]));
}

/** A data source whose follow-ups have waited too long, and the operation to name when waking its coalescer. */
export interface StrandedFollowUp {
  dataSourceKey: string;
  /** The oldest operation no round has claimed, else the oldest claimed by a round that has not completed. */
  opId: string;
  /** The round that claimed it (`<coalescer workflow id>/<run id>/<n>`), if one did. */
  roundId?: string;
}

/**
 * Data sources with an operation handed to their coalescer longer ago than `olderThanMs` and not
 * finished: their coalescer may be gone (terminated mid-round, or a deletion that trusted its mark
 * of being awake came just before). Waking a live one again is harmless.
 */
export async function strandedFollowUps(pool: Pool, olderThanMs: number): Promise<StrandedFollowUp[]> {
  // Per data source, one index probe each (the queue's index, else its open operations): a backlog of
  // 200,000 operations is not sorted every sweep. Rounds' own rows have no handed_off_at. The planner
  // prices the probes of every data source high enough to compile the query (JIT): 200 ms for 2 ms of work.
  const { rows } = await withTransaction(pool, async (tx) => {
    await tx.query('SET LOCAL jit = off');
    return tx.query<{ data_source_key: string; op_id: string; round_id: string | null }>(
      `SELECT d.key AS data_source_key, s.op_id, s.round_id
       FROM data_sources d
       CROSS JOIN LATERAL (
         (SELECT op_id, round_id FROM registry_operations
           WHERE data_source_id = d.id AND handed_off_at IS NOT NULL AND round_id IS NULL AND completed_at IS NULL
             AND handed_off_at < now() - $1 * interval '1 millisecond'
           ORDER BY handed_off_at, op_id LIMIT 1)
         UNION ALL
         (SELECT op_id, round_id FROM registry_operations
           WHERE data_source_id = d.id AND round_id IS NOT NULL AND completed_at IS NULL
             AND handed_off_at < now() - $1 * interval '1 millisecond'
           ORDER BY handed_off_at, op_id LIMIT 1)
         LIMIT 1) s
      ORDER BY d.key`,
      [olderThanMs],
    );
  });
  return rows.map((r) => ({ dataSourceKey: r.data_source_key, opId: r.op_id, ...(r.round_id ? { roundId: r.round_id } : {}) }));
}
