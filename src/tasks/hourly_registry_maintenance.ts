import type { PoolClient } from '../db/pool.ts';
import { regenerateCache, withRecordsLocked } from '../registry/derived.ts';
import { stepWithQuarantine } from '../registry/quarantine.ts';
import { addCounts, NO_COUNTS } from '../taskmgr/derived-task.ts';
import { pruneHealthHistory } from '../registry/health-history.ts';
import { formatDuration } from '../taskmgr/duration.ts';
import { TASK_LIMITS } from '../taskmgr/input.ts';
import { defineTask, listedTasks } from '../taskmgr/types.ts';
import { countInActivity } from '../metrics/activity-metrics.ts';
import { scanMarkedRecords } from '../registry/stale-marks.ts';

/** Keys grouped by data source, in one pass (a million stale records group in well under a second). */
export function keysByDataSource(rows: readonly { data_source_key: string; key: string }[]): Map<string, string[]> {
  const grouped = new Map<string, string[]>();
  for (const r of rows) {
    const keys = grouped.get(r.data_source_key);
    if (keys) keys.push(r.key);
    else grouped.set(r.data_source_key, [r.key]);
  }
  return grouped;
}

export default defineTask({
  description: 'Every hour: remove closed tasks past their retention, queue repair of records with stale derived state, fill missing cache entries',
  timeout: '1 hour',
  async run(ctx) {
    const { taskRetentionMs } = ctx.settings;
    const cutoff = new Date(Date.now() - taskRetentionMs);
    const flushed = await ctx.taskManager.flushTasks({ completedBefore: cutoff });
    const operations = await ctx.pool.query('DELETE FROM registry_operations WHERE completed_at < $1', [cutoff]);
    ctx.log.info(`removed ${flushed} closed tasks and ${operations.rowCount} finished operations older than ${formatDuration(taskRetentionMs)}`);
    // The Health view's history keeps its own two days, whatever the task retention.
    const history = await pruneHealthHistory(ctx.pool);
    if (history) ctx.log.info(`removed ${history} health history rows older than two days`);

    const { settledInvalidations, stale: rows, uncachedIds } = await scanMarkedRecords(ctx.pool);
    if (settledInvalidations) ctx.log.info(`cleared ${settledInvalidations} settled invalidations`);
    // Stale records: one repair chain per data source (quality first, index and cache after it).
    const repairs: string[] = [];
    for (const [dataSourceKey, keys] of keysByDataSource(rows)) {
      for (let i = 0; i < keys.length; i += TASK_LIMITS.maxKeys) {
        const registryObjectKeys = keys.slice(i, i + TASK_LIMITS.maxKeys);
        const logMessage = `repair of ${registryObjectKeys.length} records with stale derived state (from ${ctx.taskId})`;
        const check = await ctx.addTask('RUN_QUALITY_CHECK', { dataSourceKey, registryObjectKeys, logMessage });
        repairs.push(check);
        repairs.push(await ctx.addTask('INDEX_RECORDS', { dataSourceKey, registryObjectKeys, prerequisiteTaskId: check, logMessage }));
        repairs.push(await ctx.addTask('GENERATE_CACHE', { dataSourceKey, registryObjectKeys, prerequisiteTaskId: check, logMessage }));
      }
    }
    if (rows.length) ctx.log.warn(`${rows.length} records had stale derived state; queued ${repairs.length} repair tasks`);
    countInActivity('registry_maintenance_stale_records', rows.length, 'Records with stale derived state found by HOURLY_REGISTRY_MAINTENANCE');

    // Records without a cache entry get one now.
    let filled = 0;
    for (let i = 0; i < uncachedIds.length; i += 1000) {
      // A record whose rendering PostgreSQL refuses goes to quarantine; the rest of the chunk is filled.
      const fill = (tx: PoolClient, ids: readonly number[]) => stepWithQuarantine(tx, ids, regenerateCache, addCounts, NO_COUNTS, ctx.taskId);
      const { result, quarantined } = await withRecordsLocked(ctx.pool, uncachedIds.slice(i, i + 1000), fill);
      if (quarantined.length) ctx.log.warn(`${quarantined.length} records put in quarantine: PostgreSQL refused their cache entry`);
      filled += result.changed;
      ctx.progress(Math.min(i + 1000, uncachedIds.length), uncachedIds.length, 'filling missing cache entries');
    }
    if (filled) ctx.log.info(`filled ${filled} missing cache entries`);
    const { listed, count } = listedTasks(repairs);
    return { flushedTasks: flushed, staleRecords: rows.length, repairTasks: listed, repairTaskCount: count, filledCacheEntries: filled };
  },
});
