import { recheckQuality } from '../registry/derived.ts';
import { ROWS_STEP_BATCH, runOverRecords } from '../taskmgr/derived-task.ts';
import { defineTask } from '../taskmgr/types.ts';

export default defineTask({
  description: 'Recompute quality levels and reports: the given keys, a data source, or every data source',
  timeout: '2 hours',
  run: (ctx) => runOverRecords(ctx, 'quality levels rechecked', recheckQuality, ROWS_STEP_BATCH),
});
