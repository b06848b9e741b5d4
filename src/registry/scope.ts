/** Which records a task works on: given keys, a data source, or (for fan-out) every data source. */
import type { Queryable } from '../db/pool.ts';

/** Ids of the records with these keys; keys not in the registry are returned as `missing`. */
export async function idsForKeys(db: Queryable, keys: readonly string[]): Promise<{ ids: number[]; missing: string[] }> {
  const { rows } = await db.query<{ id: number; key: string }>('SELECT id, key FROM registry_objects WHERE key = ANY($1::text[]) ORDER BY id', [keys]);
  const found = new Set(rows.map((r) => r.key));
  return { ids: rows.map((r) => r.id), missing: keys.filter((k) => !found.has(k)) };
}

/** Ids of a data source's records; throws when the data source does not exist. */
export async function idsForDataSource(db: Queryable, dataSourceKey: string): Promise<number[]> {
  const ds = await db.query<{ id: number }>('SELECT id FROM data_sources WHERE key = $1', [dataSourceKey]);
  if (!ds.rows[0]) {
    const all = await dataSourcesBySize(db);
    throw new Error(`data source ${JSON.stringify(dataSourceKey)} does not exist; data sources: ${all.map((d) => d.key).join(', ') || '(none)'}`);
  }
  const { rows } = await db.query<{ id: number }>('SELECT id FROM registry_objects WHERE data_source_id = $1 ORDER BY id', [ds.rows[0].id]);
  return rows.map((r) => r.id);
}

/** Data sources with their record counts, smallest first: small ones finish early. */
export async function dataSourcesBySize(db: Queryable): Promise<{ key: string; title: string; records: number }[]> {
  const { rows } = await db.query<{ key: string; title: string; records: number }>(
    `SELECT ds.key, ds.title, count(ro.id)::int AS records
       FROM data_sources ds LEFT JOIN registry_objects ro ON ro.data_source_id = ds.id
      GROUP BY ds.id ORDER BY records, ds.key`,
  );
  return rows;
}
