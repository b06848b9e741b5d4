import { dataSourcesBySize, idsForDataSource } from '../registry/scope.ts';
import { defineTask, listedTasks, type TaskContext } from '../taskmgr/types.ts';

/** Queues RUN_QUALITY_CHECK -> GENERATE_CACHE -> INDEX_RECORDS for one data source, as a prerequisite chain. */
async function chain(ctx: TaskContext, dataSourceKey: string) {
  const check = await ctx.addTask('RUN_QUALITY_CHECK', { dataSourceKey, logMessage: `sync of ${dataSourceKey} (from ${ctx.taskId})` });
  const cache = await ctx.addTask('GENERATE_CACHE', { dataSourceKey, prerequisiteTaskId: check, logMessage: `sync of ${dataSourceKey} (from ${ctx.taskId})` });
  const index = await ctx.addTask('INDEX_RECORDS', { dataSourceKey, prerequisiteTaskId: cache, logMessage: `sync of ${dataSourceKey} (from ${ctx.taskId})` });
  ctx.log.info(`${dataSourceKey}: ${check} -> ${cache} -> ${index}`);
  return { dataSourceKey, tasks: [check, cache, index] };
}

export default defineTask({
  description: 'Queue quality check, cache and index of a data source as a chain (every data source, smallest first, when none is given)',
  async run(ctx) {
    if (ctx.input.registryObjectKeys?.length) throw new Error('SYNC_DATASOURCE works on whole data sources; give dataSourceKey, not registryObjectKeys');
    if (ctx.input.dataSourceKey) {
      await idsForDataSource(ctx.pool, ctx.input.dataSourceKey); // fails clearly for an unknown data source
      return chain(ctx, ctx.input.dataSourceKey);
    }
    const chains = [];
    for (const ds of await dataSourcesBySize(ctx.pool)) chains.push(await chain(ctx, ds.key));
    const { listed, count } = listedTasks(chains);
    return { chains: listed, chainCount: count };
  },
});
