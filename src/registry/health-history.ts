/**
 * The last day of the registry's health, kept in PostgreSQL for the page's Health view: task run
 * ends (written as each run ends, see task-store's recordOutcome) and follow-up lag per data
 * source (sampled by every worker, the highest sample per minute kept). Both are kept two days
 * and read in hourly or per-minute buckets, so the charts cost a few index scans, never a call to
 * Temporal's visibility API.
 */
import type { Queryable } from '../db/pool.ts';
import type { FollowUpBacklog } from './backlog.ts';

export const HISTORY_KEPT_MS = 2 * 24 * 3600_000;
/** Data sources charted by name; the rest are one line (their highest lag), so the chart stays legible. */
export const LAG_LINES = 8;

/** Keeps this worker's sample of the lag of every data source with follow-ups under way (the minute's highest wins). */
export async function recordLagSample(db: Queryable, backlog: FollowUpBacklog[]): Promise<void> {
  if (backlog.length === 0) return;
  await db.query(
    `INSERT INTO followup_lag_samples (minute, data_source_key, lag_seconds, queued)
     SELECT date_trunc('minute', now()), k, l, q FROM unnest($1::text[], $2::float8[], $3::int[]) AS s(k, l, q)
     ON CONFLICT (minute, data_source_key) DO UPDATE
       SET lag_seconds = greatest(followup_lag_samples.lag_seconds, excluded.lag_seconds),
           queued = greatest(followup_lag_samples.queued, excluded.queued)`,
    [backlog.map((b) => b.dataSourceKey), backlog.map((b) => b.oldestSeconds), backlog.map((b) => b.queued)],
  );
}

/** Drops run ends and lag samples older than HISTORY_KEPT_MS; HOURLY_REGISTRY_MAINTENANCE calls it, with the rest of retention. */
export async function pruneHealthHistory(db: Queryable): Promise<number> {
  const runs = await db.query(`DELETE FROM task_run_outcomes WHERE finished_at < now() - $1 * interval '1 millisecond'`, [HISTORY_KEPT_MS]);
  const lags = await db.query(`DELETE FROM followup_lag_samples WHERE minute < now() - $1 * interval '1 millisecond'`, [HISTORY_KEPT_MS]);
  return (runs.rowCount ?? 0) + (lags.rowCount ?? 0);
}

export interface HourlyTaskFigures {
  /** The hours charted, oldest first (ISO, on the hour). */
  hours: string[];
  /** Per method: runs ended per hour, one list per status. */
  completed: Record<string, number[]>;
  failed: Record<string, number[]>;
  /** Per method: the 95th percentile of run durations per hour, seconds (null: no run that hour). */
  durationP95: Record<string, Array<number | null>>;
}

/** The last `hours` hours of task run ends, per method and hour. */
export async function hourlyTaskFigures(db: Queryable, hours = 24): Promise<HourlyTaskFigures> {
  // Hours by epoch, not date_trunc: in a session time zone with a half-hour offset, its hours are not UTC's.
  const { rows } = await db.query<{ hour: number; method: string; completed: number; failed: number; p95: number | null }>(
    `SELECT (floor(extract(epoch FROM finished_at) / 3600) * 3600)::float8 AS hour, method,
            count(*) FILTER (WHERE status = 'COMPLETED')::int AS completed,
            count(*) FILTER (WHERE status = 'FAILED')::int AS failed,
            (percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms) / 1000)::float8 AS p95
       FROM task_run_outcomes
      WHERE finished_at >= to_timestamp((floor(extract(epoch FROM now()) / 3600) - ($1::int - 1)) * 3600)
      GROUP BY 1, 2`,
    [hours],
  );
  const axis = hourAxis(hours, await databaseNow(db));
  const slot = new Map(axis.map((h, i) => [h, i]));
  const figures: HourlyTaskFigures = { hours: axis, completed: {}, failed: {}, durationP95: {} };
  for (const r of rows) {
    const i = slot.get(new Date(r.hour * 1000).toISOString());
    if (i === undefined) continue;
    (figures.completed[r.method] ??= new Array(hours).fill(0))[i] = r.completed;
    (figures.failed[r.method] ??= new Array(hours).fill(0))[i] = r.failed;
    (figures.durationP95[r.method] ??= new Array(hours).fill(null))[i] = r.p95;
  }
  return figures;
}

export interface LagHistory {
  /** The minutes charted, oldest first (ISO). */
  minutes: string[];
  /** Per data source (the LAG_LINES most behind; "other data sources" for the rest): lag in seconds per minute, 0 when nothing was queued. */
  lagSeconds: Record<string, number[]>;
}

/** The last `hours` hours of follow-up lag, per data source and minute. */
export async function lagHistory(db: Queryable, hours = 24): Promise<LagHistory> {
  const { rows } = await db.query<{ minute: Date; data_source_key: string; lag_seconds: number }>(
    `WITH recent AS (SELECT * FROM followup_lag_samples WHERE minute >= date_trunc('minute', now()) - ($1::int * 60 - 1) * interval '1 minute'),
          top AS (SELECT data_source_key FROM recent GROUP BY 1 ORDER BY max(lag_seconds) DESC, 1 LIMIT $2)
     SELECT minute, CASE WHEN data_source_key IN (SELECT data_source_key FROM top) THEN data_source_key ELSE 'other data sources' END AS data_source_key,
            max(lag_seconds)::float8 AS lag_seconds
       FROM recent GROUP BY 1, 2`,
    [hours, LAG_LINES],
  );
  const minutes = minuteAxis(hours, await databaseNow(db));
  const slot = new Map(minutes.map((m, i) => [m, i]));
  const lagSeconds: Record<string, number[]> = {};
  for (const r of rows) {
    const i = slot.get(r.minute.toISOString());
    if (i !== undefined) (lagSeconds[r.data_source_key] ??= new Array(minutes.length).fill(0))[i] = r.lag_seconds;
  }
  return { minutes, lagSeconds };
}

/** The database's clock (ms): the buckets are cut by it, so the axis is too. */
async function databaseNow(db: Queryable): Promise<number> {
  const { rows } = await db.query<{ now: number }>('SELECT (extract(epoch FROM now()) * 1000)::float8 AS now');
  return rows[0]!.now;
}

/** The last `n` whole hours, the current one last. */
function hourAxis(n: number, now: number): string[] {
  const current = Math.floor(now / 3600_000) * 3600_000;
  return Array.from({ length: n }, (_, i) => new Date(current - (n - 1 - i) * 3600_000).toISOString());
}

/** The minutes of the last `hours` hours, the current one last. */
function minuteAxis(hours: number, now: number): string[] {
  const current = Math.floor(now / 60_000) * 60_000;
  const n = hours * 60;
  return Array.from({ length: n }, (_, i) => new Date(current - (n - 1 - i) * 60_000).toISOString());
}
