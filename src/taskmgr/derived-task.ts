/**
 * The shape GENERATE_CACHE, INDEX_RECORDS and RUN_QUALITY_CHECK share: work on the
 * given keys; else on every record of the data source; with neither, one sub-task per data source.
 */
import { dataSourcesBySize, idsForDataSource, idsForKeys } from '../registry/scope.ts';
import type { Queryable } from '../db/pool.ts';
import { withRecordsLocked } from '../registry/derived.ts';
import { stepWithQuarantine } from '../registry/quarantine.ts';

/** Counts of a derived-state step (records looked at, changed), added up over a task's batches. */
export const addCounts = (a: { records: number; changed: number }, b: { records: number; changed: number }) => ({
  records: a.records + b.records,
  changed: a.changed + b.changed,
});
export const NO_COUNTS = { records: 0, changed: 0 };
import { listedTasks, type TaskContext } from './types.ts';

/** Records per transaction for a step done in SQL, where only ids and counts reach the worker. */
export const SQL_STEP_BATCH = 1000;
/**
 * Records per transaction for a step whose rows come to the worker (the quality check reads each
 * record whole): a task's memory peak grows with it. 250 took the worker's peak over a 20,000-record
 * data source from 380-396 MB to 278-326 MB at about the same pace, in that scenario run alone (the
 * README's worker memory table).
 */
export const ROWS_STEP_BATCH = 250;

export async function runOverRecords(
  ctx: TaskContext,
  noun: string,
  step: (db: Queryable, ids: readonly number[]) => Promise<{ records: number; changed: number }>,
  batchSize = SQL_STEP_BATCH,
): Promise<unknown> {
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`batchSize must be a whole number of records >= 1, not ${batchSize}`);
  const { registryObjectKeys: keys, dataSourceKey } = ctx.input;
  if (!keys?.length && !dataSourceKey) {
    const subtasks: string[] = [];
    for (const ds of await dataSourcesBySize(ctx.pool)) {
      subtasks.push(await ctx.addTask(ctx.method, { dataSourceKey: ds.key, logMessage: `${ctx.method} for ${ds.key} (from ${ctx.taskId})` }));
    }
    ctx.log.info(`queued ${subtasks.length} sub-tasks, one per data source`);
    const { listed, count } = listedTasks(subtasks);
    return { subtasks: listed, subtaskCount: count };
  }
  let ids: number[];
  if (keys?.length) {
    const found = await idsForKeys(ctx.pool, keys);
    if (found.missing.length)
      ctx.log.warn(
        `${found.missing.length} of ${keys.length} keys are not in the registry: ${found.missing.slice(0, 10).join(', ')}${found.missing.length > 10 ? ', ...' : ''}`,
      );
    ids = found.ids;
  } else {
    ids = await idsForDataSource(ctx.pool, dataSourceKey!);
  }
  let changed = 0;
  let quarantined = 0;
  for (let i = 0; i < ids.length; i += batchSize) {
    if (ctx.signal.aborted) throw new Error('cancelled');
    const part = ids.slice(i, i + batchSize);
    // A record PostgreSQL refuses is quarantined (with the error); the rest of the batch goes on.
    const { result: r, quarantined: refused } = await withRecordsLocked(ctx.pool, part, (tx, locked) =>
      stepWithQuarantine(tx, locked, step, addCounts, NO_COUNTS, ctx.taskId),
    );
    changed += r.changed;
    quarantined += refused.length;
    ctx.progress(Math.min(i + batchSize, ids.length), ids.length, `${noun}`);
  }
  ctx.log.info(`${noun}: ${ids.length} records, ${changed} changed${dataSourceKey ? ` in ${dataSourceKey}` : ''}`);
  if (quarantined) ctx.log.warn(`${quarantined} records quarantined: PostgreSQL refused their derived state (taskmgr quarantine lists them)`);
  return quarantined ? { records: ids.length, changed, quarantined } : { records: ids.length, changed };
}
