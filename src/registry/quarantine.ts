/**
 * Poison records: a batch that PostgreSQL refuses on data is split (savepoints, in the batch's own
 * transaction) until the refused records are found; they are quarantined with the error, the rest
 * of the batch is committed. Nothing waits behind a bad record.
 */
import type { Pool, PoolClient, Queryable } from '../db/pool.ts';
import { withTransaction } from '../db/pool.ts';
import { lockRecords } from './derived.ts';

/**
 * SQLSTATE classes that retrying cannot mend: 21 cardinality violation, 22 data exception, 23
 * integrity constraint violation, 54 program limit exceeded (a tsvector or index row too large).
 */
const DATA_ERROR_CLASSES = new Set(['21', '22', '23', '54']);

/** An error of the data, not of the moment (PostgreSQL would refuse it again). */
export function isDataError(err: unknown): boolean {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) && DATA_ERROR_CLASSES.has(code.slice(0, 2));
}

export interface QuarantinedRecord {
  recordId: number;
  recordKey: string;
  dataSourceKey?: string;
  foundBy: string;
  error: string;
  sqlstate?: string;
  attempts: number;
  quarantinedAt: string;
  lastTriedAt: string;
}

/**
 * Runs `step` over `ids` inside `tx`; a part that fails on data is split in two and each half run
 * again, down to single records, which are quarantined. Records that went through leave the
 * quarantine. Returns the combined result of the parts that went through and the refused ids.
 */
export async function stepWithQuarantine<R>(
  tx: PoolClient,
  ids: readonly number[],
  step: (tx: PoolClient, ids: readonly number[]) => Promise<R>,
  combine: (a: R, b: R) => R,
  empty: R,
  foundBy: string,
): Promise<{ result: R; quarantined: number[] }> {
  const quarantined: number[] = [];
  const attempt = async (part: readonly number[]): Promise<R> => {
    if (part.length === 0) return empty;
    await tx.query('SAVEPOINT batch_part');
    try {
      const result = await step(tx, part);
      await tx.query('RELEASE SAVEPOINT batch_part');
      return result;
    } catch (err) {
      if (!isDataError(err)) throw err;
      await tx.query('ROLLBACK TO SAVEPOINT batch_part');
      await tx.query('RELEASE SAVEPOINT batch_part');
      if (part.length === 1) {
        await quarantine(tx, part[0]!, err as Error & { code?: string }, foundBy);
        quarantined.push(part[0]!);
        return empty;
      }
      const half = Math.ceil(part.length / 2);
      return combine(await attempt(part.slice(0, half)), await attempt(part.slice(half)));
    }
  };
  const result = await attempt(ids);
  await tx.query('DELETE FROM quarantined_records WHERE record_id = ANY($1::bigint[]) AND NOT record_id = ANY($2::bigint[])', [ids, quarantined]);
  return { result, quarantined };
}

async function quarantine(tx: Queryable, recordId: number, err: Error & { code?: string }, foundBy: string): Promise<void> {
  await tx.query(
    `INSERT INTO quarantined_records (record_id, record_key, data_source_id, found_by, error, sqlstate)
     SELECT id, key, data_source_id, $2, $3, $4 FROM registry_objects WHERE id = $1
     ON CONFLICT (record_id) DO UPDATE SET found_by = $2, error = $3, sqlstate = $4,
            attempts = quarantined_records.attempts + 1, last_tried_at = now()`,
    [recordId, foundBy, err.message.slice(0, 2000), err.code ?? null],
  );
}

/** Quarantined records, newest first, optionally of one data source. */
export async function listQuarantined(
  db: Queryable,
  filter: { dataSourceKey?: string; limit?: number } = {},
): Promise<{ records: QuarantinedRecord[]; total: number }> {
  const { rows } = await db.query<{
    record_id: number;
    record_key: string;
    ds: string | null;
    found_by: string;
    error: string;
    sqlstate: string | null;
    attempts: number;
    quarantined_at: Date;
    last_tried_at: Date;
    total: number;
  }>(
    `SELECT q.record_id, q.record_key, ds.key AS ds, q.found_by, q.error, q.sqlstate, q.attempts, q.quarantined_at, q.last_tried_at,
            count(*) OVER ()::int AS total
       FROM quarantined_records q LEFT JOIN data_sources ds ON ds.id = q.data_source_id
      WHERE $1::text IS NULL OR ds.key = $1
      ORDER BY q.last_tried_at DESC, q.record_id
      LIMIT $2`,
    [filter.dataSourceKey ?? null, filter.limit ?? 100],
  );
  return {
    total: rows[0]?.total ?? 0,
    records: rows.map((r) => ({
      recordId: r.record_id,
      recordKey: r.record_key,
      dataSourceKey: r.ds ?? undefined,
      foundBy: r.found_by,
      error: r.error,
      sqlstate: r.sqlstate ?? undefined,
      attempts: r.attempts,
      quarantinedAt: r.quarantined_at.toISOString(),
      lastTriedAt: r.last_tried_at.toISOString(),
    })),
  };
}

/**
 * Tries the quarantined records again (after a fix), all or those with the given keys: each that
 * goes through leaves the quarantine, each still refused stays with its new error.
 */
export async function retryQuarantined(
  pool: Pool,
  refresh: (tx: PoolClient, ids: readonly number[]) => Promise<unknown>,
  keys?: readonly string[],
): Promise<{ tried: number; released: number; stillQuarantined: number }> {
  const { rows } = await pool.query<{ record_id: number }>(
    `SELECT q.record_id FROM quarantined_records q JOIN registry_objects ro ON ro.id = q.record_id
      WHERE $1::text[] IS NULL OR q.record_key = ANY($1::text[]) ORDER BY q.record_id`,
    [keys ?? null],
  );
  // Records deleted meanwhile have nothing left to refresh.
  await pool.query('DELETE FROM quarantined_records q WHERE NOT EXISTS (SELECT 1 FROM registry_objects ro WHERE ro.id = q.record_id)');
  const ids = rows.map((r) => r.record_id);
  let stillQuarantined = 0;
  for (let i = 0; i < ids.length; i += 500) {
    const part = ids.slice(i, i + 500);
    const { quarantined } = await withTransaction(pool, async (tx) => {
      await lockRecords(tx, part);
      return stepWithQuarantine(
        tx,
        part,
        async (t, p) => refresh(t, p),
        () => undefined,
        undefined,
        'retry',
      );
    });
    stillQuarantined += quarantined.length;
  }
  return { tried: ids.length, released: ids.length - stillQuarantined, stillQuarantined };
}
