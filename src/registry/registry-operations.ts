/**
 * Registry operations besides a plain delete: delete a draft, change a record's status, import a
 * harvested batch, clear a data source. Each runs in one transaction that also records exactly
 * the records whose derived state the change invalidates, and nothing more: a status change
 * re-processes one record, not its data source.
 */
import { withTransaction, type Pool, type PoolClient } from '../db/pool.ts';
import { deleteRecordRows, planFollowUp, queuedOrDoneAtCommit, relatedTo, type ForCoalescer } from './operations.ts';
import { STATUS_TRANSITIONS, type HarvestedRecord, type OperationOutcome, type RecordStatus, type RegistryOperation } from '../shared.ts';

export class OperationRefused extends Error {
  override name = 'OperationRefused';
}
/** The record the operation names does not exist (as a deletion of a missing key reports it). */
export class RecordMissing extends Error {
  override name = 'RecordMissing';
}

const DRAFT_STATUSES: RecordStatus[] = ['DRAFT', 'SUBMITTED_FOR_ASSESSMENT', 'ASSESSMENT_IN_PROGRESS', 'MORE_WORK_REQUIRED', 'APPROVED'];

async function dataSourceId(tx: PoolClient, key: string): Promise<number> {
  const { rows } = await tx.query<{ id: number }>('SELECT id FROM data_sources WHERE key = $1', [key]);
  if (!rows[0]) throw new OperationRefused(`data source ${JSON.stringify(key)} does not exist`);
  return rows[0].id;
}

/**
 * Sets a record's outbound relations to exactly `relations`, touching only the ones that differ: a
 * re-harvest with the same relations changes no row, so it invalidates no derived state.
 */
async function replaceRelations(tx: PoolClient, fromId: number, relations: { key: string; type: string }[]) {
  const keys = relations.map((r) => r.key);
  const types = relations.map((r) => r.type);
  await tx.query(
    `DELETE FROM relations WHERE from_id = $1
        AND (to_key, relation_type) NOT IN (SELECT k, t FROM unnest($2::text[], $3::text[]) AS u(k, t))`,
    [fromId, keys, types],
  );
  await tx.query(
    'INSERT INTO relations (from_id, to_key, relation_type) SELECT $1, k, t FROM unnest($2::text[], $3::text[]) AS u(k, t) ON CONFLICT DO NOTHING',
    [fromId, keys, types],
  );
}

/** What an operation changed: its data source and record, how many records, and whose derived state it affects. */
interface AppliedChange {
  dsId?: number;
  recordKey?: string;
  changed: number;
  affectedIds: number[];
}

/**
 * Applies an operation once per opId (a retry returns the first outcome) and plans its follow-up;
 * `forCoalescer`: queued for the data source's coalescer (or complete) in the same transaction.
 */
export async function applyRegistryOperation(
  pool: Pool,
  op: RegistryOperation,
  opId: string,
  batchSize: number,
  forCoalescer?: ForCoalescer,
): Promise<OperationOutcome> {
  const earlier = await pool.query<{ affected_count: number; batch_count: number; ds: string | null; changed: number }>(
    `SELECT o.affected_count, o.batch_count, ds.key AS ds, coalesce((o.details->>'changed')::int, 0) AS changed
       FROM registry_operations o LEFT JOIN data_sources ds ON ds.id = o.data_source_id WHERE o.op_id = $1`,
    [opId],
  );
  if (earlier.rows[0]) {
    const e = earlier.rows[0];
    return { opId, kind: op.kind, dataSourceKey: e.ds ?? undefined, affected: e.affected_count, batches: e.batch_count, changed: e.changed };
  }
  return withTransaction(pool, async (tx) => {
    const { dsId, recordKey, changed, affectedIds } = await applyChange(tx, op);
    await tx.query(`INSERT INTO registry_operations (op_id, kind, record_key, data_source_id, details) VALUES ($1, $2, $3, $4, $5)`, [
      opId,
      op.kind,
      recordKey ?? null,
      dsId ?? null,
      { changed },
    ]);
    const plan = await planFollowUp(tx, opId, affectedIds, batchSize);
    await tx.query('UPDATE registry_operations SET affected_count = $2, batch_count = $3 WHERE op_id = $1', [opId, plan.affected, plan.batches]);
    if (forCoalescer) await queuedOrDoneAtCommit(tx, opId, forCoalescer);
    const ds = dsId === undefined ? undefined : (await tx.query<{ key: string }>('SELECT key FROM data_sources WHERE id = $1', [dsId])).rows[0]?.key;
    return { opId, kind: op.kind, dataSourceKey: ds, affected: plan.affected, batches: plan.batches, changed };
  });
}

function applyChange(tx: PoolClient, op: RegistryOperation): Promise<AppliedChange> {
  switch (op.kind) {
    case 'DELETE_DRAFT':
    case 'CHANGE_STATUS':
      return changeOneRecord(tx, op);
    case 'CLEAR_DATA_SOURCE':
      return clearDataSource(tx, op.dataSourceKey);
    case 'IMPORT_RECORDS':
      return importRecords(tx, op.dataSourceKey, op.records);
  }
}

/** DELETE_DRAFT (a draft goes, its related records follow up) or CHANGE_STATUS (along the transition table). */
async function changeOneRecord(tx: PoolClient, op: Extract<RegistryOperation, { kind: 'DELETE_DRAFT' | 'CHANGE_STATUS' }>): Promise<AppliedChange> {
  const { rows } = await tx.query<{ id: number; status: RecordStatus; data_source_id: number }>(
    'SELECT id, status, data_source_id FROM registry_objects WHERE key = $1 FOR UPDATE',
    [op.key],
  );
  const rec = rows[0];
  if (!rec) throw new RecordMissing(`record ${JSON.stringify(op.key)} does not exist`);
  const change = { dsId: rec.data_source_id, recordKey: op.key, changed: 1 };
  if (op.kind === 'DELETE_DRAFT') {
    if (!DRAFT_STATUSES.includes(rec.status))
      throw new OperationRefused(`record ${JSON.stringify(op.key)} is ${rec.status}; only drafts (${DRAFT_STATUSES.join(', ')}) can be deleted as drafts`);
    const affectedIds = (await relatedTo(tx, [rec.id])).filter((id) => id !== rec.id);
    await deleteRecordRows(tx, [rec.id]);
    return { ...change, affectedIds };
  }
  const allowed = STATUS_TRANSITIONS[rec.status];
  if (!allowed.includes(op.to))
    throw new OperationRefused(`record ${JSON.stringify(op.key)} is ${rec.status}; it can move to ${allowed.join(' or ')}, not ${op.to}`);
  await tx.query('UPDATE registry_objects SET status = $2, updated_at = now() WHERE id = $1', [rec.id, op.to]);
  // Only the record's own index entry and cached rendering carry its status.
  return { ...change, affectedIds: [rec.id] };
}

/** Every record of a data source goes; the records related to them (elsewhere) follow up. */
async function clearDataSource(tx: PoolClient, dataSourceKey: string): Promise<AppliedChange> {
  const dsId = await dataSourceId(tx, dataSourceKey);
  const { rows } = await tx.query<{ id: number }>('SELECT id FROM registry_objects WHERE data_source_id = $1 ORDER BY id FOR UPDATE', [dsId]);
  const ids = rows.map((r) => r.id);
  const gone = new Set(ids);
  const affectedIds = (await relatedTo(tx, ids)).filter((id) => !gone.has(id));
  await deleteRecordRows(tx, ids);
  return { dsId, changed: ids.length, affectedIds };
}

/** A harvest batch upserted; the records, those related before and those related after follow up. */
async function importRecords(tx: PoolClient, dataSourceKey: string, records: HarvestedRecord[]): Promise<AppliedChange> {
  const dsId = await dataSourceId(tx, dataSourceKey);
  const keys = records.map((r) => r.key);
  // Locked in id order, as writers of derived state lock records (see lockRecords): no deadlock.
  const before = await tx.query<{ id: number }>('SELECT id FROM registry_objects WHERE key = ANY($1::text[]) ORDER BY id FOR UPDATE', [keys]);
  const relatedBefore = await relatedTo(
    tx,
    before.rows.map((r) => r.id),
  );
  const ids = await upsertRecords(tx, dsId, records);
  // Array fields and relations per record (arrays of arrays do not unnest row by row).
  for (const r of records) {
    const { rows } = await tx.query<{ id: number }>('UPDATE registry_objects SET identifiers = $2, subjects = $3, dates = $4 WHERE key = $1 RETURNING id', [
      r.key,
      r.identifiers ?? [],
      r.subjects ?? [],
      r.dates ?? [],
    ]);
    await replaceRelations(tx, rows[0]!.id, r.relations ?? []);
  }
  return { dsId, changed: ids.length, affectedIds: [...ids, ...relatedBefore, ...(await relatedTo(tx, ids))] };
}

/** The records' scalar fields in one statement (arrays of columns, unnested); their ids. */
async function upsertRecords(tx: PoolClient, dsId: number, records: HarvestedRecord[]): Promise<number[]> {
  const keys = records.map((r) => r.key);
  const col = <T>(f: (r: HarvestedRecord) => T) => records.map(f);
  const upserted = await tx.query<{ id: number }>(
    `INSERT INTO registry_objects AS ro (key, class, type, group_name, data_source_id, status, title, description, rights,
              access_policy, location_address, electronic_address, identifiers, subjects, dates,
              spatial_coverage, temporal_coverage, citation_info)
       SELECT u.key, u.class::record_class, u.type, u.grp, $1, coalesce(u.status, 'DRAFT')::record_status, u.title, u.description, u.rights,
              u.access_policy, u.location, u.electronic, '{}', '{}', '{}',
              u.spatial, u.temporal, u.citation
         FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[],
                     $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::text[])
              AS u(key, class, type, grp, status, title, description, rights, access_policy, location, electronic,
                   spatial, temporal, citation)
       ON CONFLICT (key) DO UPDATE SET class = EXCLUDED.class, type = EXCLUDED.type, group_name = EXCLUDED.group_name,
              data_source_id = EXCLUDED.data_source_id, status = EXCLUDED.status, title = EXCLUDED.title,
              description = EXCLUDED.description, rights = EXCLUDED.rights, access_policy = EXCLUDED.access_policy,
              location_address = EXCLUDED.location_address, electronic_address = EXCLUDED.electronic_address,
              spatial_coverage = EXCLUDED.spatial_coverage, temporal_coverage = EXCLUDED.temporal_coverage,
              citation_info = EXCLUDED.citation_info, updated_at = now()
       RETURNING ro.id`,
    [
      dsId,
      keys,
      col((r) => r.class),
      col((r) => r.type ?? null),
      col((r) => r.group ?? null),
      col((r) => r.status ?? null),
      col((r) => r.title ?? null),
      col((r) => r.description ?? null),
      col((r) => r.rights ?? null),
      col((r) => r.accessPolicy ?? null),
      col((r) => r.locationAddress ?? null),
      col((r) => r.electronicAddress ?? null),
      col((r) => r.spatialCoverage ?? null),
      col((r) => r.temporalCoverage ?? null),
      col((r) => r.citationInfo ?? null),
    ],
  );
  return upserted.rows.map((r) => r.id);
}
