/** flushTasks, on its own task queue (a flush of another file's queue would remove its tasks): the server deletes flushed tasks in the background, so this file waits beside the others. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { eventually, settledTask, useTaskManager } from '../helpers.ts';

describe('flushing closed tasks', () => {
  const tm = useTaskManager({ records: 200, dataSources: 2, hubs: 1, hubSize: 20, seed: 5 });

  const settled = (id: string, timeoutMs = 30_000) => settledTask(tm.tasks, id, timeoutMs);

  it('flushTasks removes failed tasks, and completed ones older than the cutoff', { timeout: 180_000 }, async () => {
    const failed = await settled(await tm.tasks.addNewTask('GENERATE_CACHE', { dataSourceKey: 'flush-me' }));
    assert.equal(failed.status, 'FAILED');
    const completed = await settled(await tm.tasks.addNewTask('INDEX_RECORDS', { registryObjectKeys: [tm.seeded.hubs[0]!.key] }));
    assert.equal(completed.status, 'COMPLETED');
    const listed = async (status: 'FAILED' | 'COMPLETED', id: string) => (await tm.tasks.listTasks({ status })).tasks.some((x) => x.taskId === id);
    await eventually(async () => (await listed('FAILED', failed.taskId)) && listed('COMPLETED', completed.taskId));

    const flushed: string[] = [];
    const onDeleted = (id: string) => flushed.push(id);
    assert.ok((await tm.tasks.flushTasks({ failed: true }, { onDeleted })) >= 1);
    assert.deepEqual(flushed, [failed.taskId], 'only the failed task');
    await tm.tasks.flushTasks({ completedBefore: new Date(Date.parse(completed.completedAt!) - 60_000) }, { onDeleted });
    assert.equal((await tm.tasks.getTask(completed.taskId)).status, 'COMPLETED', 'newer than the cutoff: kept');
    assert.ok((await tm.tasks.flushTasks({ completedBefore: new Date(Date.now() + 1000) }, { onDeleted })) >= 1);
    assert.deepEqual(flushed, [failed.taskId, completed.taskId]);
    // The server deletes in the background (from seconds to a minute here, with the machine busy).
    const gone = (id: string) =>
      tm.tasks.getTask(id).then(
        () => false,
        (err: Error) => /does not exist/.test(err.message),
      );
    await eventually(async () => (await gone(failed.taskId)) && gone(completed.taskId), 150_000, 1000);
  });
});
