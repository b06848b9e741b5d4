import { recheckQuality } from '../registry/derived.ts';
import { runOverRecords } from '../taskmgr/derived-task.ts';
import { defineTask } from '../taskmgr/types.ts';

export default defineTask({
  description: 'Recompute quality levels and reports: the given keys, a data source, or every data source',
  timeout: '2 hours',
  run: (ctx) => runOverRecords(ctx, 'quality levels rechecked', recheckQuality),
});
