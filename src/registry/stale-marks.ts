/**
 * Which records' derived state is behind their inputs: derived state computed from older inputs
 * than the record has now (its fields, its relations, its related records' keys, classes and
 * titles: see migration 0007), or missing. Versions, not timestamps: a re-harvest that changes
 * nothing leaves nothing stale.
 *
 * The maintenance asks only the marked records (migration 0015) and those with open invalidations:
 * every change that can leave a record stale marks it, and a mark goes when its record is fresh.
 */
import type { Queryable } from '../db/pool.ts';

/** Stale, given a record (ro), its index entry (ri), its cache entry (rc) and its newest invalidation's version (inv). */
const STALE = `
  (ro.quality_source_version IS NULL OR ro.quality_source_version < GREATEST(ro.inputs_version, coalesce(inv.version, 0))
   OR ri.record_id IS NULL OR ri.source_version IS NULL
   OR ri.source_version < GREATEST(ro.inputs_version, coalesce(inv.version, 0), coalesce(ro.quality_version, 0))
   OR (rc.record_id IS NOT NULL
       AND (rc.source_version IS NULL OR rc.source_version < GREATEST(ro.inputs_version, coalesce(inv.version, 0), coalesce(ro.quality_version, 0)))))`;

/**
 * Every record compared, marked or not: the definition the marks stand in for. Tests check the
 * marks against it, and the scale bench times it beside the marked scan.
 */
export const STALE_RECORDS_EVERYWHERE = `
  WITH inv AS (SELECT record_id, max(version) AS version FROM derived_invalidations GROUP BY record_id)
  SELECT ds.key AS data_source_key, ro.key
    FROM registry_objects ro
    JOIN data_sources ds ON ds.id = ro.data_source_id
    LEFT JOIN inv ON inv.record_id = ro.id
    LEFT JOIN record_index ri ON ri.record_id = ro.id
    LEFT JOIN record_cache rc ON rc.record_id = ro.id
   WHERE ${STALE}
     AND NOT EXISTS (SELECT 1 FROM quarantined_records q WHERE q.record_id = ro.id)
   ORDER BY ds.key, ro.key`;

/**
 * One statement, so that the marks it removes are judged on the snapshot it read them in:
 * - checks the marked records and those with open invalidations (each by its primary key);
 * - removes the marks of records gone, or fresh with a cache entry, unless the record was marked
 *   again meanwhile (the marked_version no longer matches) or a writer holds the mark (SKIP LOCKED:
 *   the writer is changing the record, so the mark stays);
 * - returns the records that need work: stale, or without a cache entry. Quarantined records keep
 *   their marks but wait for a fix and a retry (taskmgr quarantine retry), not an hourly repair.
 */
export const SCAN_MARKED_RECORDS = `
  WITH candidates AS (
    SELECT record_id AS id FROM derived_stale_marks
    UNION
    SELECT DISTINCT record_id FROM derived_invalidations
  ), checked AS MATERIALIZED (
    SELECT c.id, m.marked_version, ro.id IS NOT NULL AS present, ds.key AS data_source_key, ro.key,
           coalesce(${STALE}, false) AS stale,
           rc.record_id IS NULL AS uncached,
           EXISTS (SELECT 1 FROM quarantined_records q WHERE q.record_id = c.id) AS quarantined
      FROM candidates c
      LEFT JOIN derived_stale_marks m ON m.record_id = c.id
      LEFT JOIN registry_objects ro ON ro.id = c.id
      LEFT JOIN data_sources ds ON ds.id = ro.data_source_id
      LEFT JOIN record_index ri ON ri.record_id = c.id
      LEFT JOIN record_cache rc ON rc.record_id = c.id
      LEFT JOIN LATERAL (SELECT max(di.version) AS version FROM derived_invalidations di WHERE di.record_id = c.id) inv ON true
  ), cleared AS (
    DELETE FROM derived_stale_marks m
     WHERE m.record_id IN (
       SELECT m2.record_id FROM derived_stale_marks m2
         JOIN checked ch ON ch.id = m2.record_id AND ch.marked_version = m2.marked_version
        WHERE NOT ch.present OR NOT (ch.stale OR ch.uncached)
          FOR UPDATE OF m2 SKIP LOCKED)
  )
  SELECT id, data_source_key, key, stale, uncached FROM checked
   WHERE present AND NOT quarantined AND (stale OR uncached)
   ORDER BY data_source_key, key`;

export interface RecordNeedingWork {
  id: number;
  data_source_key: string;
  key: string;
  stale: boolean;
  uncached: boolean;
}

/** Invalidations every derived value of their record has caught up with, and those of deleted records. */
const SETTLED_INVALIDATIONS = `
  DELETE FROM derived_invalidations di
   WHERE NOT EXISTS (SELECT 1 FROM registry_objects ro WHERE ro.id = di.record_id)
      OR EXISTS (SELECT 1 FROM registry_objects ro JOIN record_index ri ON ri.record_id = ro.id
                  WHERE ro.id = di.record_id AND ro.quality_source_version >= di.version AND ri.source_version >= di.version
                    AND NOT EXISTS (SELECT 1 FROM record_cache rc WHERE rc.record_id = ro.id AND rc.source_version < di.version))`;

export interface MarkedScan {
  settledInvalidations: number;
  stale: RecordNeedingWork[];
  uncachedIds: number[];
}

/**
 * The records whose derived state is stale or whose cache entry is missing; removes settled
 * invalidations and the marks of the rest. Both tables swing between empty and a bulk load's
 * size within minutes, faster than autovacuum's statistics follow: they are analysed first, so
 * the plan fits the candidates there are (lookups by key for a few, hash joins for a million).
 */
export async function scanMarkedRecords(db: Queryable): Promise<MarkedScan> {
  const settled = await db.query(SETTLED_INVALIDATIONS);
  await db.query('ANALYZE derived_stale_marks, derived_invalidations');
  const { rows } = await db.query<RecordNeedingWork>(SCAN_MARKED_RECORDS);
  return {
    settledInvalidations: settled.rowCount ?? 0,
    stale: rows.filter((r) => r.stale),
    uncachedIds: rows.filter((r) => r.uncached).map((r) => Number(r.id)),
  };
}
