/** A task's output names the tasks it added within what a task may return, however many there are. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LISTED_TASK_IDS, listedTasks } from '../../src/taskmgr/types.ts';

/** What runTask keeps of a task's output (src/activities/task-activities.ts). */
const MAX_OUTPUT_BYTES = 256 * 1024;

describe('tasks named in an output', () => {
  it('a fan-out over 20,000 data sources lists the first ones and counts them all, within the output limit', () => {
    const ids = Array.from({ length: 20_000 }, (_, i) => `task:GENERATE_CACHE:data-source-with-a-long-name-${i}:0123456789abcdef`);
    const { listed, count } = listedTasks(ids);
    assert.equal(count, 20_000);
    assert.deepEqual(listed, ids.slice(0, LISTED_TASK_IDS));
    assert.ok(Buffer.byteLength(JSON.stringify({ subtasks: listed, subtaskCount: count })) < MAX_OUTPUT_BYTES);
  });

  it('a short list is kept whole', () => {
    assert.deepEqual(listedTasks(['a', 'b']), { listed: ['a', 'b'], count: 2 });
  });
});
