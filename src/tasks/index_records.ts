import { reindexRecords } from '../registry/derived.ts';
import { runOverRecords } from '../taskmgr/derived-task.ts';
import { defineTask } from '../taskmgr/types.ts';

export default defineTask({
  description: "Rebuild records' search index entries: the given keys, a data source, or every data source",
  timeout: '2 hours',
  run: (ctx) => runOverRecords(ctx, 'index entries rebuilt', reindexRecords),
});
