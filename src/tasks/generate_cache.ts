import { regenerateCache } from '../registry/derived.ts';
import { runOverRecords } from '../taskmgr/derived-task.ts';
import { defineTask } from '../taskmgr/types.ts';

export default defineTask({
  description: "Regenerate records' cached extended renderings: the given keys, a data source, or every data source",
  timeout: '2 hours',
  run: (ctx) => runOverRecords(ctx, 'cache entries regenerated', regenerateCache),
});
