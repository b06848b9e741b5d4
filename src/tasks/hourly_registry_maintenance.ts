import { loadConfig } from '../config.ts';
import { regenerateCache, withRecordsLocked } from '../registry/derived.ts';
import { formatDuration } from '../taskmgr/duration.ts';
import { TASK_LIMITS } from '../taskmgr/input.ts';
import { defineTask } from '../taskmgr/types.ts';

/**
 * Derived state older than the record it derives from, or missing: quality never computed, no
 * index entry or an entry older than the record's last change, likewise for the cache.
 */
const STALE_RECORDS = `
  SELECT ds.key AS data_source_key, ro.key
    FROM registry_objects ro
    JOIN data_sources ds ON ds.id = ro.data_source_id
    LEFT JOIN record_index ri ON ri.record_id = ro.id
    LEFT JOIN record_cache rc ON rc.record_id = ro.id
   WHERE (ro.quality_updated_at IS NULL
      OR ri.record_id IS NULL OR ri.indexed_at < ro.updated_at
      OR (rc.record_id IS NOT NULL AND rc.generated_at < ro.updated_at))
     -- Quarantined records wait for a fix and a retry (taskmgr quarantine retry), not an hourly repair.
     AND NOT EXISTS (SELECT 1 FROM quarantined_records q WHERE q.record_id = ro.id)
   ORDER BY ds.key, ro.key`;

export default defineTask({
  description: 'Every hour: remove closed tasks past their retention, queue repair of records with stale derived state, fill missing cache entries',
  timeout: '1 hour',
  async run(ctx) {
    const config = loadConfig();
    const cutoff = new Date(Date.now() - config.taskRetentionMs);
    const flushed = await ctx.taskManager.flushTasks({ completedBefore: cutoff });
    const operations = await ctx.pool.query('DELETE FROM registry_operations WHERE completed_at < $1', [cutoff]);
    ctx.log.info(`removed ${flushed} closed tasks and ${operations.rowCount} finished operations older than ${formatDuration(config.taskRetentionMs)}`);

    // Stale records: one repair chain per data source (quality first, index and cache after it).
    const { rows } = await ctx.pool.query<{ data_source_key: string; key: string }>(STALE_RECORDS);
    const byDataSource = new Map<string, string[]>();
    for (const r of rows) byDataSource.set(r.data_source_key, [...(byDataSource.get(r.data_source_key) ?? []), r.key]);
    const repairs: string[] = [];
    for (const [dataSourceKey, keys] of byDataSource) {
      for (let i = 0; i < keys.length; i += TASK_LIMITS.maxKeys) {
        const registryObjectKeys = keys.slice(i, i + TASK_LIMITS.maxKeys);
        const logMessage = `repair of ${registryObjectKeys.length} records with stale derived state`;
        const check = await ctx.addTask('RUN_QUALITY_CHECK', { dataSourceKey, registryObjectKeys, logMessage });
        repairs.push(check);
        repairs.push(await ctx.addTask('INDEX_RECORDS', { dataSourceKey, registryObjectKeys, prerequisiteTaskId: check, logMessage }));
        repairs.push(await ctx.addTask('GENERATE_CACHE', { dataSourceKey, registryObjectKeys, prerequisiteTaskId: check, logMessage }));
      }
    }
    if (rows.length) ctx.log.warn(`${rows.length} records had stale derived state; queued ${repairs.length} repair tasks`);

    // Records without a cache entry get one now (the original's "fill missing hashes").
    const missing = await ctx.pool.query<{ id: number }>(
      'SELECT ro.id FROM registry_objects ro LEFT JOIN record_cache rc ON rc.record_id = ro.id WHERE rc.record_id IS NULL AND NOT EXISTS (SELECT 1 FROM quarantined_records q WHERE q.record_id = ro.id) ORDER BY ro.id',
    );
    let filled = 0;
    for (let i = 0; i < missing.rows.length; i += 1000) {
      filled += (await withRecordsLocked(ctx.pool, missing.rows.slice(i, i + 1000).map((r) => r.id), regenerateCache)).changed;
      ctx.progress(Math.min(i + 1000, missing.rows.length), missing.rows.length, 'filling missing cache entries');
    }
    if (filled) ctx.log.info(`filled ${filled} missing cache entries`);
    return { flushedTasks: flushed, staleRecords: rows.length, repairTasks: repairs, filledCacheEntries: filled };
  },
});
