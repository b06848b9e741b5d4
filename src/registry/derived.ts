/**
 * Derived state of records: quality level, search index entry, cached rendering.
 * Each function takes a batch of record ids, is set-based (one or two statements a batch)
 * and idempotent: it writes a row only when the new value differs, so running it twice
 * changes nothing the second time. Ids of records that no longer exist lose their derived rows.
 */
import { withTransaction, type Pool, type PoolClient, type Queryable } from '../db/pool.ts';
import type { LevelChanges, RecordClass } from '../shared.ts';
import { assessQuality, type QualityInput } from './quality.ts';

/**
 * Takes the row locks of the given records, in id order. Derived state is computed from several
 * tables and written with "only if different": under READ COMMITTED a writer whose statement
 * started before another writer committed would wait for that writer's row, then store what it
 * computed from the older state (a lost update: a cache entry showing a quality level already
 * superseded). Every writer of derived state and every registry change takes these locks first,
 * in the same order, so each computes from what the previous one committed.
 */
export async function lockRecords(tx: Queryable, ids: readonly number[], mode: 'update' | 'delete' = 'update'): Promise<void> {
  // A delete needs the stronger lock; both take the rows in the same (id) order.
  if (ids.length)
    await tx.query(`SELECT 1 FROM registry_objects WHERE id = ANY($1::bigint[]) ORDER BY id ${mode === 'delete' ? 'FOR UPDATE' : 'FOR NO KEY UPDATE'}`, [ids]);
}

/** Runs `step` on the records in one transaction that holds their locks (see lockRecords). */
export async function withRecordsLocked<T>(pool: Pool, ids: readonly number[], step: (tx: PoolClient, ids: readonly number[]) => Promise<T>): Promise<T> {
  return withTransaction(pool, async (tx) => {
    await lockRecords(tx, ids);
    return step(tx, ids);
  });
}

/**
 * The inputs version a record's quality is computed from: its own (bumped by a trigger when its
 * fields change) or a later invalidation (a related record or a relation changed). Its index entry
 * and rendering also show its quality level, so they also count the version of its last level change.
 */
const QUALITY_INPUTS = `GREATEST(ro.inputs_version, coalesce((SELECT max(di.version) FROM derived_invalidations di WHERE di.record_id = ro.id), 0))`;
const RENDERING_INPUTS = `GREATEST(${QUALITY_INPUTS}, coalesce(ro.quality_version, 0))`;
export const CURRENT_INPUTS = { quality: QUALITY_INPUTS, rendering: RENDERING_INPUTS };

/**
 * The versions of the records' inputs, read before their derived state is computed: what is
 * recorded as its source is never newer than what it was computed from (a change committed
 * meanwhile leaves it stale, for the next repair).
 */
async function inputVersions(db: Queryable, ids: readonly number[], which: keyof typeof CURRENT_INPUTS): Promise<{ ids: number[]; versions: string[] }> {
  const { rows } = await db.query<{ id: number; v: string }>(
    `SELECT ro.id, (${CURRENT_INPUTS[which]})::text AS v FROM registry_objects ro WHERE ro.id = ANY($1::bigint[])`,
    [ids],
  );
  return { ids: rows.map((r) => r.id), versions: rows.map((r) => r.v) };
}

interface QualityRow {
  id: number;
  key: string;
  class: RecordClass;
  type: string | null;
  group_name: string | null;
  title: string | null;
  description: string | null;
  rights: string | null;
  access_policy: string | null;
  location_address: string | null;
  electronic_address: string | null;
  identifiers: string[];
  subjects: string[];
  dates: string[];
  spatial_coverage: string | null;
  temporal_coverage: string | null;
  citation_info: string | null;
  gold_standard: boolean;
  quality_level: number | null;
  related_classes: RecordClass[];
}

export interface QualityRecheckResult {
  records: number;
  changed: number;
  levelChanges: LevelChanges;
}

/** Recomputes quality levels and reports of the given records. */
export async function recheckQuality(db: Queryable, ids: readonly number[]): Promise<QualityRecheckResult> {
  if (ids.length === 0) return { records: 0, changed: 0, levelChanges: {} };
  const sources = await inputVersions(db, ids, 'quality');
  const { rows } = await db.query<QualityRow>(
    `SELECT ro.id, ro.key, ro.class, ro.type, ro.group_name, ro.title, ro.description, ro.rights,
            ro.access_policy, ro.location_address, ro.electronic_address, ro.identifiers, ro.subjects,
            ro.dates, ro.spatial_coverage, ro.temporal_coverage, ro.citation_info, ro.gold_standard,
            ro.quality_level,
            ARRAY(SELECT DISTINCT rr.related_class::text FROM related_records(ro.id, ro.key) rr) AS related_classes
       FROM registry_objects ro
      WHERE ro.id = ANY($1::bigint[])`,
    [ids],
  );
  const levelChanges: LevelChanges = {};
  const outIds: number[] = [];
  const levels: number[] = [];
  const reports: string[] = [];
  for (const row of rows) {
    const report = assessQuality(toQualityInput(row), row.related_classes);
    if (row.quality_level !== report.level) {
      const change = `${row.quality_level ?? 'none'}->${report.level}`;
      levelChanges[change] = (levelChanges[change] ?? 0) + 1;
    }
    outIds.push(row.id);
    levels.push(report.level);
    reports.push(JSON.stringify(report));
  }
  // A changed level or report leaves the index entry and rendering behind it: the same statement
  // marks those records for the maintenance (migration 0015), whatever becomes of the rest of the chain.
  const updated = await db.query(
    `WITH changed AS (
       UPDATE registry_objects ro
          SET quality_level = u.level, quality_report = u.report, quality_updated_at = now(),
              quality_version = nextval('derived_input_versions')
         FROM unnest($1::bigint[], $2::smallint[], $3::jsonb[]) AS u(id, level, report)
        WHERE ro.id = u.id
          AND (ro.quality_level IS DISTINCT FROM u.level OR ro.quality_report IS DISTINCT FROM u.report)
       RETURNING ro.id, ro.quality_version)
     INSERT INTO derived_stale_marks (record_id, marked_version) SELECT id, quality_version FROM changed
     ON CONFLICT (record_id) DO UPDATE SET marked_version = EXCLUDED.marked_version`,
    [outIds, levels, reports],
  );
  // After the level (a change of level is a change of the index's and cache's inputs).
  await db.query(
    `UPDATE registry_objects ro SET quality_source_version = u.v
       FROM unnest($1::bigint[], $2::bigint[]) AS u(id, v)
      WHERE ro.id = u.id AND (ro.quality_source_version IS NULL OR ro.quality_source_version < u.v)`,
    [sources.ids, sources.versions],
  );
  return { records: rows.length, changed: updated.rowCount ?? 0, levelChanges };
}

/** Marks a derived table's entries as computed from the input versions read before (also where the content did not change). */
async function recordSourceVersions(db: Queryable, table: 'record_index' | 'record_cache', sources: { ids: number[]; versions: string[] }) {
  await db.query(
    `UPDATE ${table} d SET source_version = u.v
       FROM unnest($1::bigint[], $2::bigint[]) AS u(id, v)
      WHERE d.record_id = u.id AND (d.source_version IS NULL OR d.source_version < u.v)`,
    [sources.ids, sources.versions],
  );
}

function toQualityInput(row: QualityRow): QualityInput {
  return {
    key: row.key,
    class: row.class,
    type: row.type,
    group: row.group_name,
    title: row.title,
    description: row.description,
    rights: row.rights,
    accessPolicy: row.access_policy,
    locationAddress: row.location_address,
    electronicAddress: row.electronic_address,
    identifiers: row.identifiers,
    subjects: row.subjects,
    dates: row.dates,
    spatialCoverage: row.spatial_coverage,
    temporalCoverage: row.temporal_coverage,
    citationInfo: row.citation_info,
    goldStandard: row.gold_standard,
  };
}

/** Deletes the derived rows (index or cache) of those ids whose record no longer exists. */
async function removeEntriesOfDeleted(db: Queryable, table: 'record_index' | 'record_cache', ids: readonly number[]) {
  return db.query(
    `DELETE FROM ${table} d
      WHERE d.record_id = ANY($1::bigint[])
        AND NOT EXISTS (SELECT 1 FROM registry_objects ro WHERE ro.id = d.record_id)`,
    [ids],
  );
}

/** Related titles put into a record's search document: enough to find a record by its
 *  project or collector, bounded so a hub's document stays small. */
const INDEXED_RELATED_TITLES = 200;

/** Rebuilds the search index entries of the given records; removes entries of deleted ones. */
export async function reindexRecords(db: Queryable, ids: readonly number[]): Promise<{ records: number; changed: number }> {
  if (ids.length === 0) return { records: 0, changed: 0 };
  const sources = await inputVersions(db, ids, 'rendering');
  const removed = await removeEntriesOfDeleted(db, 'record_index', ids);
  const upserted = await db.query(
    `INSERT INTO record_index AS ri (record_id, record_key, data_source_id, class, status, title, quality_level, document)
     SELECT ro.id, ro.key, ro.data_source_id, ro.class, ro.status, ro.title, ro.quality_level,
            setweight(to_tsvector('english', coalesce(ro.title, '')), 'A')
         || setweight(to_tsvector('english', coalesce(ro.description, '') || ' ' || array_to_string(ro.subjects, ' ')), 'B')
         || setweight(to_tsvector('simple', ro.key || ' ' || array_to_string(ro.identifiers, ' ')), 'B')
         || setweight(to_tsvector('english', coalesce(rel.titles, '')), 'C')
       FROM registry_objects ro
       LEFT JOIN LATERAL (
         SELECT string_agg(coalesce(x.related_title, ''), ' ') AS titles
           FROM (SELECT DISTINCT rr.related_key, rr.related_title FROM related_records(ro.id, ro.key) rr
                  ORDER BY rr.related_key LIMIT ${INDEXED_RELATED_TITLES}) x
       ) rel ON true
      WHERE ro.id = ANY($1::bigint[])
     ON CONFLICT (record_id) DO UPDATE
        SET record_key = EXCLUDED.record_key, data_source_id = EXCLUDED.data_source_id, class = EXCLUDED.class,
            status = EXCLUDED.status, title = EXCLUDED.title, quality_level = EXCLUDED.quality_level,
            document = EXCLUDED.document, indexed_at = now()
      WHERE (ri.record_key, ri.data_source_id, ri.class, ri.status, ri.title, ri.quality_level, ri.document)
            IS DISTINCT FROM
            (EXCLUDED.record_key, EXCLUDED.data_source_id, EXCLUDED.class, EXCLUDED.status, EXCLUDED.title,
             EXCLUDED.quality_level, EXCLUDED.document)`,
    [ids],
  );
  await recordSourceVersions(db, 'record_index', sources);
  return { records: ids.length, changed: (removed.rowCount ?? 0) + (upserted.rowCount ?? 0) };
}

/** Regenerates the cached extended renderings of the given records; removes those of deleted ones. */
export async function regenerateCache(db: Queryable, ids: readonly number[]): Promise<{ records: number; changed: number }> {
  if (ids.length === 0) return { records: 0, changed: 0 };
  const sources = await inputVersions(db, ids, 'rendering');
  const removed = await removeEntriesOfDeleted(db, 'record_cache', ids);
  const upserted = await db.query(
    `INSERT INTO record_cache AS rc (record_id, record_key, rendering)
     SELECT ro.id, ro.key,
            jsonb_build_object(
              'key', ro.key, 'class', ro.class, 'type', ro.type, 'group', ro.group_name,
              'dataSource', ds.key, 'status', ro.status, 'title', ro.title, 'description', ro.description,
              'identifiers', to_jsonb(ro.identifiers), 'subjects', to_jsonb(ro.subjects),
              'qualityLevel', ro.quality_level, 'goldStandard', ro.gold_standard,
              'related', coalesce((
                SELECT jsonb_agg(jsonb_build_object('key', rr.related_key, 'class', rr.related_class,
                                                    'title', rr.related_title, 'relation', rr.relation_type,
                                                    'direction', rr.direction)
                                 ORDER BY rr.related_key, rr.relation_type, rr.direction)
                  FROM related_records(ro.id, ro.key) rr), '[]'::jsonb))
       FROM registry_objects ro JOIN data_sources ds ON ds.id = ro.data_source_id
      WHERE ro.id = ANY($1::bigint[])
     ON CONFLICT (record_id) DO UPDATE
        SET record_key = EXCLUDED.record_key, rendering = EXCLUDED.rendering, generated_at = now()
      WHERE rc.rendering IS DISTINCT FROM EXCLUDED.rendering OR rc.record_key IS DISTINCT FROM EXCLUDED.record_key`,
    [ids],
  );
  await recordSourceVersions(db, 'record_cache', sources);
  return { records: ids.length, changed: (removed.rowCount ?? 0) + (upserted.rowCount ?? 0) };
}

export interface RefreshResult {
  records: number;
  levelChanges: LevelChanges;
  reindexed: number;
  recached: number;
}
export const NO_REFRESH: RefreshResult = { records: 0, levelChanges: {}, reindexed: 0, recached: 0 };

/** Quality, then index and cache (both carry the quality level), for records whose locks `tx` holds. */
export async function refreshDerived(tx: Queryable, ids: readonly number[]): Promise<RefreshResult> {
  const quality = await recheckQuality(tx, ids);
  const index = await reindexRecords(tx, ids);
  const cache = await regenerateCache(tx, ids);
  return { records: ids.length, levelChanges: quality.levelChanges ?? {}, reindexed: index.changed, recached: cache.changed };
}

export function addRefreshResults(a: RefreshResult, b: RefreshResult): RefreshResult {
  const levelChanges: LevelChanges = { ...a.levelChanges };
  for (const [change, n] of Object.entries(b.levelChanges)) levelChanges[change] = (levelChanges[change] ?? 0) + n;
  return { records: a.records + b.records, levelChanges, reindexed: a.reindexed + b.reindexed, recached: a.recached + b.recached };
}
