/**
 * Registry changes that plan their own follow-up: the change, the list of records whose
 * derived state it invalidates, and the operation row are written in one transaction.
 */
import { lockRecords } from './derived.ts';
import { notifyFollowUpDone } from './followup-notices.ts';
import { withTransaction, type Pool, type PoolClient, type Queryable } from '../db/pool.ts';
import type { DeletionOutcome, RecordClass } from '../shared.ts';

interface OperationRow {
  op_id: string;
  deleted_record_id: number | null;
  record_key: string | null;
  record_class: RecordClass | null;
  data_source_key: string | null;
  affected_count: number;
  batch_count: number;
}

async function findOperation(db: Queryable, opId: string): Promise<OperationRow | undefined> {
  const { rows } = await db.query<OperationRow>(
    `SELECT o.op_id, o.deleted_record_id, o.record_key, o.record_class, ds.key AS data_source_key, o.affected_count, o.batch_count
       FROM registry_operations o LEFT JOIN data_sources ds ON ds.id = o.data_source_id
      WHERE o.op_id = $1`,
    [opId],
  );
  return rows[0];
}

const outcomeOf = (op: OperationRow, key: string): DeletionOutcome => {
  const outcome: DeletionOutcome = {
    deleted: true,
    opId: op.op_id,
    key,
    dataSourceKey: op.data_source_key ?? undefined,
    recordClass: op.record_class ?? undefined,
    affected: op.affected_count,
    batches: op.batch_count,
  };
  // Counted by the round: the same answer whether asked before or after it planned.
  return op.deleted_record_id == null ? outcome : { ...outcome, affected: 0, batches: 0, plannedByRound: true };
};

/** Records the ids as the operation's follow-up work list, in batches. */
export async function planFollowUp(tx: PoolClient, opId: string, ids: number[], batchSize: number): Promise<{ affected: number; batches: number }> {
  const unique = [...new Set(ids)].sort((a, b) => a - b);
  await tx.query(
    `INSERT INTO followup_items (op_id, batch_no, record_id)
     SELECT $1, ((row_number() OVER (ORDER BY id)) - 1) / $3, id FROM unnest($2::bigint[]) AS id`,
    [opId, unique, batchSize],
  );
  return { affected: unique.length, batches: Math.ceil(unique.length / batchSize) };
}

/** Ids of the records related (either direction) to any of the given records. */
export async function relatedTo(tx: PoolClient, ids: number[]): Promise<number[]> {
  const { rows } = await tx.query<{ id: number }>(
    'SELECT DISTINCT rr.related_id AS id FROM registry_objects ro, related_records(ro.id, ro.key) rr WHERE ro.id = ANY($1::bigint[])',
    [ids],
  );
  return rows.map((r) => r.id);
}

/** Deletes records with their index and cache entries and their own relations. */
export async function deleteRecordRows(tx: PoolClient, ids: number[]): Promise<void> {
  // The records' locks first, as every writer of derived state takes them (see lockRecords): no deadlock.
  await lockRecords(tx, ids, 'delete');
  await tx.query('DELETE FROM relations WHERE from_id = ANY($1::bigint[])', [ids]);
  await tx.query('DELETE FROM record_index WHERE record_id = ANY($1::bigint[])', [ids]);
  await tx.query('DELETE FROM record_cache WHERE record_id = ANY($1::bigint[])', [ids]);
  await tx.query('DELETE FROM registry_objects WHERE id = ANY($1::bigint[])', [ids]);
}

/**
 * Deletes a record with its index and cache entries and records, under `opId`, every record
 * related to it (both directions) in batches of `batchSize`.
 * Idempotent: run again with the same opId it returns the first run's outcome.
 */
export async function deleteRecordAndPlanFollowUp(
  pool: Pool,
  args: { key: string; opId: string; batchSize: number; forCoalescer?: ForCoalescer },
): Promise<DeletionOutcome> {
  const { key, opId, batchSize } = args;
  const earlier = await findOperation(pool, opId);
  if (earlier) return outcomeOf(earlier, key);

  return withTransaction(pool, async (tx: PoolClient) => {
    const { rows } = await tx.query<{ id: number; class: RecordClass; data_source_id: number }>(
      'SELECT id, class, data_source_id FROM registry_objects WHERE key = $1 FOR UPDATE',
      [key],
    );
    const record = rows[0];
    if (!record) {
      // A concurrent run of this same operation may have committed first.
      const committed = await findOperation(tx, opId);
      return committed ? outcomeOf(committed, key) : { deleted: false, opId, key, affected: 0, batches: 0 };
    }
    await tx.query(
      `INSERT INTO registry_operations (op_id, kind, record_key, record_class, data_source_id)
       VALUES ($1, 'DELETE_RECORD', $2, $3, $4)`,
      [opId, key, record.class, record.data_source_id],
    );
    const plan = await planFollowUp(
      tx,
      opId,
      (await relatedTo(tx, [record.id])).filter((id) => id !== record.id),
      batchSize,
    );
    await deleteRecordRows(tx, [record.id]);
    const op = await tx.query<OperationRow>(
      `UPDATE registry_operations o SET affected_count = $2, batch_count = $3
         FROM data_sources ds WHERE ds.id = o.data_source_id AND o.op_id = $1
       RETURNING o.op_id, o.record_key, o.record_class, ds.key AS data_source_key, o.affected_count, o.batch_count`,
      [opId, plan.affected, plan.batches],
    );
    if (args.forCoalescer) await queuedOrDoneAtCommit(tx, opId, args.forCoalescer);
    return outcomeOf(op.rows[0]!, key);
  });
}

/** An operation whose follow-up its data source's coalescer will run: the trace of the call that made it. */
export interface ForCoalescer {
  traceCarrier?: Record<string, string>;
}

/**
 * In the operation's own transaction: queued for its data source's coalescer when it has work to
 * follow up, else complete. Once the change commits, the sweep for stranded follow-ups sees it,
 * even when its workflow never gets to hand it off (terminated between the commit and the signal).
 */
export async function queuedOrDoneAtCommit(tx: PoolClient, opId: string, forCoalescer: ForCoalescer): Promise<void> {
  const { rows } = await tx.query<{ done: boolean }>(
    `UPDATE registry_operations SET
         handed_off_at = CASE WHEN batch_count > 0 AND data_source_id IS NOT NULL THEN now() END,
         trace_context = CASE WHEN batch_count > 0 AND data_source_id IS NOT NULL THEN $2::jsonb END,
         completed_at = CASE WHEN batch_count > 0 AND data_source_id IS NOT NULL THEN NULL ELSE now() END
       WHERE op_id = $1 RETURNING completed_at IS NOT NULL AS done`,
    [opId, forCoalescer.traceCarrier ?? null],
  );
  if (rows[0]?.done) await notifyFollowUpDone(tx, opId);
}

/** Set in a transaction whose related records a round plans: the invalidation triggers leave them to it. */
const PLANNED_BY_ROUND = "SELECT set_config('registry.follow_up_planned_by_round', 'on', true)";

/**
 * Deletes a record with its index and cache entries and queues its follow-up for the data source's
 * coalescer, whose round finds the related records (planRound). Its work does not grow with the
 * record's relations: they stay until the round completes. Idempotent per opId.
 */
export async function deleteRecordForRound(
  pool: Pool,
  args: { key: string; opId: string; traceCarrier?: Record<string, string> },
): Promise<{ outcome: DeletionOutcome; coalescerAwake: boolean }> {
  const { key, opId } = args;
  const earlier = await findOperation(pool, opId);
  // A retry cannot tell whether the coalescer saw the operation: it is woken again (a repeat is harmless).
  if (earlier) return { outcome: outcomeOf(earlier, key), coalescerAwake: false };

  return withTransaction(pool, async (tx: PoolClient) => {
    // The row lock lockRecords would take, so writers of derived state wait as for any delete. Whether
    // it has relations at all is two index probes: without, there is nothing to follow up.
    const { rows } = await tx.query<{ id: number; class: RecordClass; data_source_id: number; related: boolean }>(
      `SELECT id, class, data_source_id,
              EXISTS (SELECT 1 FROM relations WHERE from_id = ro.id) OR EXISTS (SELECT 1 FROM relations WHERE to_key = ro.key) AS related
         FROM registry_objects ro WHERE key = $1 FOR UPDATE`,
      [key],
    );
    const record = rows[0];
    if (!record) {
      const committed = await findOperation(tx, opId);
      return { outcome: committed ? outcomeOf(committed, key) : { deleted: false, opId, key, affected: 0, batches: 0 }, coalescerAwake: false };
    }
    await deleteRecordLeavingRelations(tx, record.id);
    // Queued for the round (deleted_record_id set, handed off), or, with no relations, complete now.
    const op = await tx.query<OperationRow>(
      `WITH op AS (
         INSERT INTO registry_operations (op_id, kind, record_key, record_class, data_source_id, deleted_record_id, handed_off_at, trace_context, completed_at)
         VALUES ($1, 'DELETE_RECORD', $2, $3, $4, CASE WHEN $7::boolean THEN $5::bigint END, CASE WHEN $7 THEN now() END,
                 CASE WHEN $7 THEN $6::jsonb END, CASE WHEN NOT $7 THEN now() END)
         RETURNING *)
       SELECT op.op_id, op.deleted_record_id, op.record_key, op.record_class, ds.key AS data_source_key, op.affected_count, op.batch_count
         FROM op JOIN data_sources ds ON ds.id = op.data_source_id`,
      [opId, key, record.class, record.data_source_id, record.id, args.traceCarrier ?? null, record.related],
    );
    const coalescerAwake = record.related && (await coalescerIsAwake(tx, record.data_source_id));
    return { outcome: outcomeOf(op.rows[0]!, key), coalescerAwake };
  });
}

/** How long deletions trust an awake coalescer without a signal (a terminated one is replaced after this). */
const AWAKE_LEASE = '1 minute';

/**
 * Whether the data source's coalescer is awake: it will look at its queue before it sleeps, and
 * finds this transaction's operation there. The key-share lock holds its check before sleeping
 * (coalescerMaySleep) until this transaction ends. Read after the operation is queued.
 */
async function coalescerIsAwake(tx: PoolClient, dataSourceId: number): Promise<boolean> {
  const { rows } = await tx.query<{ awake: boolean }>('SELECT awake_until > now() AS awake FROM coalescer_awake WHERE data_source_id = $1 FOR KEY SHARE', [
    dataSourceId,
  ]);
  return rows[0]?.awake === true;
}

/** The data source's coalescer has planned a round: deletions queued from now on need not wake it. */
async function markCoalescerAwake(db: Queryable, dataSourceId: number): Promise<void> {
  await db.query(
    `INSERT INTO coalescer_awake (data_source_id, awake_until) VALUES ($1, now() + $2::interval)
     ON CONFLICT (data_source_id) DO UPDATE SET awake_until = EXCLUDED.awake_until`,
    [dataSourceId, AWAKE_LEASE],
  );
}

/**
 * The coalescer's check before it sleeps, after a round: true when operations of its data source
 * wait unclaimed (it goes on, still awake), false when none does (it is marked asleep, and later
 * deletions wake it). Waits for deletions that read it awake to commit, so none is missed.
 */
export async function coalescerMaySleep(pool: Pool, dataSourceKey: string): Promise<{ more: boolean }> {
  // A transaction of its own, not the end of the round's: the lock below must not wait while the
  // round's longer work holds rows a deletion may need.
  return withTransaction(pool, async (tx) => {
    const ds = await tx.query<{ id: number }>('SELECT id FROM data_sources WHERE key = $1', [dataSourceKey]);
    const dataSourceId = ds.rows[0]?.id;
    if (dataSourceId === undefined) return { more: false };
    await tx.query('SELECT 1 FROM coalescer_awake WHERE data_source_id = $1 FOR UPDATE', [dataSourceId]);
    const more = await unclaimedWait(tx, dataSourceKey);
    if (more) await markCoalescerAwake(tx, dataSourceId);
    else await tx.query('DELETE FROM coalescer_awake WHERE data_source_id = $1', [dataSourceId]);
    return { more };
  });
}

/** Whether operations of the data source are queued and not claimed by any round. */
async function unclaimedWait(db: Queryable, dataSourceKey: string): Promise<boolean> {
  const { rowCount } = await db.query(
    `SELECT 1 FROM registry_operations o JOIN data_sources ds ON ds.id = o.data_source_id
      WHERE ds.key = $1 AND o.handed_off_at IS NOT NULL AND o.round_id IS NULL AND o.completed_at IS NULL LIMIT 1`,
    [dataSourceKey],
  );
  return (rowCount ?? 0) > 0;
}

/**
 * Deletes a record (its row locked by the caller) with its index and cache entries, and leaves its
 * relations and the invalidation triggers' work to a round: work that does not grow with its relations.
 */
export async function deleteRecordLeavingRelations(tx: PoolClient, id: number): Promise<void> {
  await tx.query(PLANNED_BY_ROUND);
  await tx.query('DELETE FROM record_index WHERE record_id = $1', [id]);
  await tx.query('DELETE FROM record_cache WHERE record_id = $1', [id]);
  await tx.query('DELETE FROM registry_objects WHERE id = $1', [id]);
}

/**
 * Plans a round in one statement, in PostgreSQL (a hub's 100,000 related records never travel
 * through the worker): the records related to the round's deferred deletions (their relations are
 * still in place; inbound ones by key, so a record re-created with that key since is only rechecked
 * once more) get their counts on their operations and the invalidations their deletes' triggers
 * would have noted; with the operations' own work lists, each record once, they make the round's.
 */
const PLAN_ROUND = `
  WITH gone AS (
    SELECT op_id, deleted_record_id, record_key FROM registry_operations WHERE op_id = ANY($2::text[]) AND deleted_record_id IS NOT NULL
  ), related AS (
    SELECT g.op_id, t.id FROM gone g JOIN relations r ON r.from_id = g.deleted_record_id JOIN registry_objects t ON t.key = r.to_key
    UNION
    SELECT g.op_id, f.id FROM gone g JOIN relations r ON r.to_key = g.record_key JOIN registry_objects f ON f.id = r.from_id
  ), counted AS (
    UPDATE registry_operations o SET affected_count = c.n
      FROM (SELECT op_id, count(*) AS n FROM related GROUP BY op_id) c WHERE o.op_id = c.op_id
  ), invalidated AS (
    INSERT INTO derived_invalidations (record_id) SELECT DISTINCT id FROM related
  ), work AS (
    SELECT id FROM related
    UNION
    SELECT record_id FROM followup_items WHERE op_id = ANY($2::text[])
  ), items AS (
    INSERT INTO followup_items (op_id, batch_no, record_id)
    SELECT $1, ((row_number() OVER (ORDER BY id)) - 1) / $3, id FROM work
    RETURNING 1
  )
  SELECT count(*)::int AS affected FROM items`;

/** The record ids of one follow-up batch. */
export async function followUpBatch(db: Queryable, opId: string, batchNo: number): Promise<number[]> {
  const { rows } = await db.query<{ record_id: number }>('SELECT record_id FROM followup_items WHERE op_id = $1 AND batch_no = $2 ORDER BY record_id', [
    opId,
    batchNo,
  ]);
  return rows.map((r) => r.record_id);
}

/** Marks an operation's follow-up done and drops its work list. Idempotent. */
export async function completeOperation(pool: Pool, opId: string): Promise<void> {
  await withTransaction(pool, async (tx) => {
    await tx.query('UPDATE registry_operations SET completed_at = coalesce(completed_at, now()) WHERE op_id = $1', [opId]);
    await tx.query('DELETE FROM followup_items WHERE op_id = $1', [opId]);
    await notifyFollowUpDone(tx, opId);
  });
}

/**
 * Marks an operation as waiting for its data source's coalescer (its queue is these rows), with
 * the trace of the call that queued it (when traced), for the round to join.
 */
export async function queueForCoalescer(db: Queryable, opId: string, traceCarrier?: Record<string, string>): Promise<void> {
  await db.query(
    'UPDATE registry_operations SET handed_off_at = coalesce(handed_off_at, now()), trace_context = coalesce(trace_context, $2) WHERE op_id = $1',
    [opId, traceCarrier ?? null],
  );
}

/** The traces a round's operations came from (the oldest first); empty when none was traced. */
export async function roundTraceCarriers(db: Queryable, roundId: string): Promise<Array<Record<string, string>>> {
  const { rows } = await db.query<{ trace_context: Array<Record<string, string>> | null }>('SELECT trace_context FROM registry_operations WHERE op_id = $1', [
    roundId,
  ]);
  return rows[0]?.trace_context ?? [];
}

/** Traces a round keeps at most (one it continues, the rest as links). */
const ROUND_TRACES_KEPT = 32;

/** Operations one round takes at most; the rest wait for the next round (a round's plan stays bounded). */
export const MAX_OPS_PER_ROUND = 2000;

/**
 * Plans one round of a data source's coalesced follow-up: claims the queued operations (and any
 * named ones, handed off before the queue lived here), and writes the union of their work lists,
 * each record once, under the round's own id. Idempotent per roundId.
 */
export async function planRound(
  pool: Pool,
  args: { roundId: string; opIds: string[]; dataSourceKey: string; batchSize: number; keepTraces?: boolean },
): Promise<{ opId: string; affected: number; batches: number; opIds: string[]; more: boolean }> {
  const earlier = await findOperation(pool, args.roundId);
  if (earlier) {
    const claimed = await pool.query<{ op_id: string }>('SELECT op_id FROM registry_operations WHERE round_id = $1 ORDER BY op_id', [args.roundId]);
    return {
      opId: args.roundId,
      affected: earlier.affected_count,
      batches: earlier.batch_count,
      opIds: claimed.rows.map((r) => r.op_id),
      more: await unclaimedWait(pool, args.dataSourceKey),
    };
  }
  return withTransaction(pool, async (tx) => {
    const ds = await tx.query<{ id: number }>('SELECT id FROM data_sources WHERE key = $1', [args.dataSourceKey]);
    // Deletions read the mark with a key-share lock, which this update does not wait for, nor they for it;
    // they see it once the plan commits (until then they signal, and this claim or the check after the round finds them).
    if (ds.rows[0]) await markCoalescerAwake(tx, ds.rows[0].id);
    await tx.query(`INSERT INTO registry_operations (op_id, kind, data_source_id) VALUES ($1, 'FOLLOW_UP_ROUND', $2)`, [args.roundId, ds.rows[0]?.id ?? null]);
    const claimed = await tx.query<{ op_id: string }>(
      `UPDATE registry_operations SET round_id = $1, handed_off_at = coalesce(handed_off_at, now())
        WHERE op_id IN (SELECT op_id FROM registry_operations
                         WHERE completed_at IS NULL AND kind <> 'FOLLOW_UP_ROUND'
                           -- Unclaimed, or claimed by a round that never completed (its coalescer was terminated).
                           AND (round_id IS NULL OR round_id IN (SELECT r.op_id FROM registry_operations r
                                                                  WHERE r.kind = 'FOLLOW_UP_ROUND' AND r.completed_at IS NULL AND r.op_id <> $1))
                           AND ((data_source_id = $2 AND handed_off_at IS NOT NULL) OR op_id = ANY($3::text[]))
                         ORDER BY handed_off_at NULLS FIRST, op_id LIMIT $4 FOR UPDATE SKIP LOCKED)
       RETURNING op_id`,
      [args.roundId, ds.rows[0]?.id ?? null, args.opIds, MAX_OPS_PER_ROUND + 1],
    );
    const opIds = claimed.rows.map((r) => r.op_id).sort();
    const more = opIds.length > MAX_OPS_PER_ROUND;
    if (more) {
      const spare = opIds.pop()!;
      await tx.query('UPDATE registry_operations SET round_id = NULL WHERE op_id = $1', [spare]);
    }
    // Only when tracing is on: with it off, every round would pay for a statement that finds nothing.
    if (args.keepTraces)
      await tx.query(
        `UPDATE registry_operations SET trace_context = t.carriers
         FROM (SELECT jsonb_agg(trace_context ORDER BY handed_off_at, op_id) AS carriers
                 FROM (SELECT trace_context, handed_off_at, op_id FROM registry_operations
                        WHERE op_id = ANY($2::text[]) AND trace_context IS NOT NULL
                        ORDER BY handed_off_at, op_id LIMIT $3) oldest) t
        WHERE op_id = $1 AND t.carriers IS NOT NULL`,
        [args.roundId, opIds, ROUND_TRACES_KEPT],
      );
    const { rows } = await tx.query<{ affected: number }>(PLAN_ROUND, [args.roundId, opIds, args.batchSize]);
    const plan = { affected: rows[0]!.affected, batches: Math.ceil(rows[0]!.affected / args.batchSize) };
    await tx.query('UPDATE registry_operations SET affected_count = $2, batch_count = $3 WHERE op_id = $1', [args.roundId, plan.affected, plan.batches]);
    return { opId: args.roundId, ...plan, opIds, more };
  });
}

/** What a round did, shared by the operations it covered. */
export interface RoundTotals {
  qualityChanges: Record<string, number>;
  reindexed: number;
  recached: number;
  quarantined?: number;
}

/** Marks a round and the operations it covered complete, keeping the round's totals. Idempotent. */
export async function completeRound(pool: Pool, roundId: string, opIds: string[], totals?: RoundTotals): Promise<void> {
  await withTransaction(pool, async (tx) => {
    const all = [roundId, ...opIds];
    if (totals) await tx.query('UPDATE registry_operations SET details = $2 WHERE op_id = $1', [roundId, { ...totals, coalescedWith: opIds.length }]);
    await tx.query('UPDATE registry_operations SET round_id = coalesce(round_id, $2) WHERE op_id = ANY($1::text[]) AND op_id <> $2', [opIds, roundId]);
    await tx.query('UPDATE registry_operations SET completed_at = coalesce(completed_at, now()) WHERE op_id = ANY($1::text[])', [all]);
    await tx.query('DELETE FROM followup_items WHERE op_id = ANY($1::text[])', [all]);
    // The deferred deletions' relations: planned from, now gone (their invalidations were noted by the plan).
    await tx.query(PLANNED_BY_ROUND);
    await tx.query(
      `DELETE FROM relations WHERE from_id IN (SELECT deleted_record_id FROM registry_operations
                                                WHERE op_id = ANY($1::text[]) AND deleted_record_id IS NOT NULL)`,
      [opIds],
    );
    await notifyFollowUpDone(tx, roundId);
  });
}

/** How an operation's follow-up ended, as long as its row is kept: undefined while it is not done. */
export async function operationOutcome(db: Queryable, opId: string): Promise<OperationFollowUp | undefined | 'unknown'> {
  const { rows } = await db.query<{ completed_at: Date | null; affected_count: number; round: (RoundTotals & { coalescedWith: number }) | null }>(
    `SELECT o.completed_at, o.affected_count, r.details AS round FROM registry_operations o LEFT JOIN registry_operations r ON r.op_id = o.round_id WHERE o.op_id = $1`,
    [opId],
  );
  const row = rows[0];
  if (!row) return 'unknown';
  if (!row.completed_at) return undefined;
  return { ...(row.round ?? { qualityChanges: {}, reindexed: 0, recached: 0, coalescedWith: 1 }), affected: row.affected_count };
}

/** A completed operation's follow-up: its round's totals, and the related records of its own change. */
export type OperationFollowUp = RoundTotals & { coalescedWith: number; affected: number };
