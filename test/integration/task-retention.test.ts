/** Retention and prerequisites, on its own task queue: the server deletes flushed tasks in the background (about half a minute here), so this file waits beside the others rather than in tasks.test.ts. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { eventually, settledTask, useTaskManager } from '../helpers.ts';

describe('retention of closed tasks', () => {
  const tm = useTaskManager({ records: 200, dataSources: 2, hubs: 1, hubSize: 20, seed: 5 });

  const settled = (id: string, timeoutMs = 30_000) => settledTask(tm.tasks, id, timeoutMs);
  const ds = (i: number) => tm.seeded.dataSources[i]!;

  it('retention never removes a task that a WAITING task names as prerequisite; the dependant registers when added', async () => {
    const prerequisite = await settled(await tm.tasks.addNewTask('INDEX_RECORDS', { registryObjectKeys: [tm.seeded.hubs[0]!.key] }));
    assert.equal(prerequisite.status, 'COMPLETED');
    const dependant = await tm.tasks.addNewTask('GENERATE_CACHE', { dataSourceKey: ds(1), prerequisiteTaskId: prerequisite.taskId, scheduledFor: '1 hour' });
    // Registered at once, not when its schedule comes.
    assert.ok((await tm.tasks.getTask(prerequisite.taskId)).dependants.includes(dependant));
    await eventually(async () => (await tm.tasks.listTasks({ status: 'COMPLETED' })).tasks.some((x) => x.taskId === prerequisite.taskId));
    const bystander = await settled(await tm.tasks.addNewTask('GENERATE_CACHE', { registryObjectKeys: [tm.seeded.hubs[0]!.key] }));
    await eventually(async () => (await tm.tasks.listTasks({ status: 'COMPLETED' })).tasks.some((x) => x.taskId === bystander.taskId));
    const flushed: string[] = [];
    await tm.tasks.flushTasks({ completedBefore: new Date(Date.now() + 60_000) }, { onDeleted: (id) => flushed.push(id) });
    assert.ok(flushed.includes(bystander.taskId), 'a completed task nothing waits for is flushed');
    assert.ok(!flushed.includes(prerequisite.taskId), 'kept while its dependant waits');
    await tm.tasks.rescheduleTask(dependant, '1 second');
    const t = await settled(dependant);
    assert.equal(t.status, 'COMPLETED', t.error);
    await eventually(async () => (await tm.tasks.listTasks({ status: 'COMPLETED' })).tasks.some((x) => x.taskId === dependant));
    const later: string[] = [];
    await tm.tasks.flushTasks({ completedBefore: new Date(Date.now() + 60_000) }, { onDeleted: (id) => later.push(id) });
    // Its deletion by the server, in the background, is task-flush.test.ts's to watch.
    assert.ok(later.includes(prerequisite.taskId), 'flushed once nothing waits for it');
  });
});
