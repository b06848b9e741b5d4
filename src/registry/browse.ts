/** Read-only views of the registry for the admin page and API: data sources, record search, one record. */
import type { Queryable } from '../db/pool.ts';
import type { QualityReport } from './quality.ts';

export interface DataSourceView {
  key: string;
  title: string;
  records: number;
  byClass: Record<string, number>;
  byQuality: Record<string, number>;
  /** Registry operations whose follow-up has not finished yet. */
  openOperations: number;
}

/** Every data source with its record counts and unfinished follow-ups. */
export async function listDataSources(db: Queryable): Promise<DataSourceView[]> {
  const { rows } = await db.query<{
    key: string;
    title: string;
    records: number;
    by_class: Record<string, number> | null;
    by_quality: Record<string, number> | null;
    open_ops: number;
  }>(
    `SELECT ds.key, ds.title,
            coalesce((SELECT count(*) FROM registry_objects r WHERE r.data_source_id = ds.id), 0)::int AS records,
            (SELECT jsonb_object_agg(class, n) FROM (SELECT class, count(*)::int AS n FROM registry_objects r WHERE r.data_source_id = ds.id GROUP BY class) c) AS by_class,
            (SELECT jsonb_object_agg(coalesce(q::text, 'unchecked'), n) FROM (SELECT quality_level AS q, count(*)::int AS n FROM registry_objects r WHERE r.data_source_id = ds.id GROUP BY quality_level) c) AS by_quality,
            (SELECT count(*) FROM registry_operations o WHERE o.data_source_id = ds.id AND o.completed_at IS NULL)::int AS open_ops
       FROM data_sources ds ORDER BY ds.key`,
  );
  return rows.map((r) => ({
    key: r.key,
    title: r.title,
    records: r.records,
    byClass: r.by_class ?? {},
    byQuality: r.by_quality ?? {},
    openOperations: r.open_ops,
  }));
}

export interface RecordSearch {
  /** Words to find through the full-text index (websearch syntax: "quoted phrases", -excluded, or). */
  q?: string;
  dataSourceKey?: string;
  recordClass?: string;
  qualityLevel?: number;
  status?: string;
  limit: number;
  offset: number;
}

export interface RecordRow {
  key: string;
  title: string | null;
  class: string;
  status: string;
  dataSourceKey: string;
  qualityLevel: number | null;
}

/**
 * Matches are counted exactly up to this many; past it the total is a lower bound. Counting and
 * ranking every match of a common word in a registry of a million records reads each of them
 * (over half a second here); a page of results needs only its own rows.
 */
export const SEARCH_COUNT_CAP = 10_000;

export interface RecordSearchResult {
  records: RecordRow[];
  /** Matches, exact up to SEARCH_COUNT_CAP. */
  total: number;
  /** More than `total` match (then results come in key order, not by rank). */
  totalIsAtLeast: boolean;
}

/**
 * Past the count cap, a page of several words in key order is found fastest by walking the key
 * index and testing each record. The planner cannot know that: it takes the words as independent
 * (198 records estimated where 134,332 of a million match) and reads and sorts every match (559
 * ms). The walk is bounded (matches may bunch in one key range, as a data source's name does):
 * when its first KEY_WALK_ROWS records in key order do not fill the page, the planner's plan does.
 */
const KEY_WALK_ROWS = 10_000;

const RECORD_ROW = `i.record_key AS key, i.title, i.class, i.status, ds.key AS "dataSourceKey", i.quality_level AS "qualityLevel"`;

/** Searches records through the index (record_index), so results show what searchers see. */
export async function searchRecords(db: Queryable, s: RecordSearch, countCap = SEARCH_COUNT_CAP, keyWalkRows = KEY_WALK_ROWS): Promise<RecordSearchResult> {
  const { whereSql, params } = searchFilter(s);
  const counted = await db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM (SELECT 1 FROM record_index i JOIN data_sources ds ON ds.id = i.data_source_id ${whereSql} LIMIT $${params.length + 1}) m`,
    [...params, countCap + 1],
  );
  const many = counted.rows[0]!.n > countCap;
  const walked = many && s.q ? await keyWalkPage(db, s, { whereSql, params }, keyWalkRows) : undefined;
  const page = walked ?? (await plannedPage(db, s, whereSql, params, many));
  return { records: page, total: Math.min(counted.rows[0]!.n, countCap), totalIsAtLeast: many };
}

/** A page as the planner plans it: ranked when the matches are few enough to rank, else in key order. */
async function plannedPage(db: Queryable, s: RecordSearch, whereSql: string, params: unknown[], many: boolean): Promise<RecordRow[]> {
  const rank = s.q && !many ? `ts_rank(i.document, websearch_to_tsquery('english', $1) || websearch_to_tsquery('simple', $1)) DESC,` : '';
  const { rows } = await db.query<RecordRow>(
    `SELECT ${RECORD_ROW} FROM record_index i JOIN data_sources ds ON ds.id = i.data_source_id ${whereSql}
      ORDER BY ${rank} i.record_key LIMIT $${params.length + 1} OFFSET $${params.length + 2}`,
    [...params, s.limit, s.offset],
  );
  return rows;
}

/**
 * A page in key order from the first `walkRows` records (of the data source, when one is
 * asked for) in key order, filtered after: exact when it is full, undefined when it is not. The
 * LIMIT keeps PostgreSQL from pushing the filter into the walk.
 */
async function keyWalkPage(
  db: Queryable,
  s: RecordSearch,
  { whereSql, params }: { whereSql: string; params: unknown[] },
  walkRows: number,
): Promise<RecordRow[] | undefined> {
  const n = params.length;
  const inDataSource = s.dataSourceKey ? `WHERE data_source_id = (SELECT id FROM data_sources WHERE key = $${n + 4})` : '';
  const { rows } = await db.query<RecordRow>(
    `SELECT ${RECORD_ROW}
       FROM (SELECT * FROM record_index ${inDataSource} ORDER BY record_key LIMIT $${n + 3}) i
       JOIN data_sources ds ON ds.id = i.data_source_id ${whereSql}
      ORDER BY i.record_key LIMIT $${n + 1} OFFSET $${n + 2}`,
    [...params, s.limit, s.offset, walkRows, ...(s.dataSourceKey ? [s.dataSourceKey] : [])],
  );
  return rows.length === s.limit ? rows : undefined;
}

/** The search's WHERE clause and its parameters ($1 is the words, when there are words). */
function searchFilter(s: RecordSearch): { whereSql: string; params: unknown[] } {
  const where: string[] = [];
  const params: unknown[] = [];
  const add = (sql: (p: string) => string, value: unknown) => {
    params.push(value);
    where.push(sql(`$${params.length}`));
  };
  // English for words (stemmed), simple for keys and identifiers (indexed unstemmed).
  if (s.q) add((p) => `(i.document @@ websearch_to_tsquery('english', ${p}) OR i.document @@ websearch_to_tsquery('simple', ${p}))`, s.q);
  if (s.dataSourceKey) add((p) => `i.data_source_id = (SELECT id FROM data_sources WHERE key = ${p})`, s.dataSourceKey);
  if (s.recordClass) add((p) => `i.class = ${p}::record_class`, s.recordClass);
  if (s.qualityLevel !== undefined) add((p) => `i.quality_level = ${p}`, s.qualityLevel);
  if (s.status) add((p) => `i.status = ${p}::record_status`, s.status);
  return { whereSql: where.length ? `WHERE ${where.join(' AND ')}` : '', params };
}

export interface RecordView extends RecordRow {
  type: string | null;
  group: string | null;
  description: string | null;
  qualityReport: QualityReport | null;
  qualityUpdatedAt: string | null;
  indexedAt: string | null;
  cachedAt: string | null;
  updatedAt: string;
  relations: { key: string; class: string; title: string | null; type: string; direction: 'outbound' | 'inbound' }[];
  /** Relations to keys that are not (or no longer) in the registry. */
  dangling: { key: string; type: string }[];
}

/** One record as the registry holds it, with its relations and derived state. Undefined when absent. */
export async function getRecord(db: Queryable, key: string): Promise<RecordView | undefined> {
  const { rows } = await db.query(
    `SELECT r.id, r.key, r.title, r.class, r.status, ds.key AS "dataSourceKey", r.quality_level AS "qualityLevel",
            r.type, r.group_name AS "group", r.description, r.quality_report AS "qualityReport",
            r.quality_updated_at AS "qualityUpdatedAt", i.indexed_at AS "indexedAt", c.generated_at AS "cachedAt", r.updated_at AS "updatedAt"
       FROM registry_objects r JOIN data_sources ds ON ds.id = r.data_source_id
       LEFT JOIN record_index i ON i.record_id = r.id
       LEFT JOIN record_cache c ON c.record_id = r.id
      WHERE r.key = $1`,
    [key],
  );
  const row = rows[0];
  if (!row) return undefined;
  const [related, dangling] = await Promise.all([
    db.query(
      `SELECT related_key AS key, related_class AS class, related_title AS title, relation_type AS type, direction
         FROM related_records($1, $2) ORDER BY direction, relation_type, related_key LIMIT 500`,
      [row.id, key],
    ),
    db.query(
      `SELECT rel.to_key AS key, rel.relation_type AS type FROM relations rel
        WHERE rel.from_id = $1 AND NOT EXISTS (SELECT 1 FROM registry_objects t WHERE t.key = rel.to_key) ORDER BY 1 LIMIT 100`,
      [row.id],
    ),
  ]);
  const { id: _id, ...view } = row;
  const iso = (d: Date | null) => (d ? d.toISOString() : null);
  return {
    ...view,
    qualityUpdatedAt: iso(view.qualityUpdatedAt),
    indexedAt: iso(view.indexedAt),
    cachedAt: iso(view.cachedAt),
    updatedAt: iso(view.updatedAt)!,
    relations: related.rows,
    dangling: dangling.rows,
  } as RecordView;
}
