/**
 * Disabled (the file name begins with "_"): a weekly digest to saved-search
 * subscribers. Kept as the example of a disabled task; rename it without the "_" to enable it.
 */
import { defineTask } from '../taskmgr/types.ts';

export default defineTask({
  description: 'Weekly digest of new records per data source (disabled)',
  async run(ctx) {
    const { rows } = await ctx.pool.query<{ key: string; added: number }>(
      `SELECT ds.key, count(ro.id)::int AS added FROM data_sources ds
         LEFT JOIN registry_objects ro ON ro.data_source_id = ds.id AND ro.created_at > now() - interval '7 days'
        GROUP BY ds.key ORDER BY ds.key`,
    );
    for (const r of rows) ctx.log.info(`${r.key}: ${r.added} new records this week`);
    return rows;
  },
});
