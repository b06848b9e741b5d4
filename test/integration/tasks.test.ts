/** The task manager on the real Temporal dev server and PostgreSQL. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TaskInputError, TaskStateError, UnknownTaskMethodError } from '../../src/client/task-client.ts';
import type { TaskInfo } from '../../src/taskmgr/info.ts';
import { eventually, snapshot, settledTask, startWithTemporalCli, useTaskManager, visibilityWrites } from '../helpers.ts';

describe('the task manager', () => {
  const tm = useTaskManager({ records: 600, dataSources: 4, hubs: 1, hubSize: 50, seed: 5 });

  const settled = (id: string, timeoutMs = 30_000) => settledTask(tm.tasks, id, timeoutMs);
  const ds = (i: number) => tm.seeded.dataSources[i]!;

  it('a task runs WAITING -> STARTED -> COMPLETED and reports its output, log lines and times', async () => {
    await tm.db.pool.query('DELETE FROM record_cache WHERE record_key LIKE $1', [`${ds(0)}/%`]);
    const id = await tm.tasks.addNewTask('GENERATE_CACHE', { dataSourceKey: ds(0), logMessage: 'test run' });
    assert.match(id, new RegExp(`^task:GENERATE_CACHE:${ds(0)}:`));
    const t = await settled(id);
    assert.equal(t.status, 'COMPLETED');
    const count = (
      await tm.db.pool.query('SELECT count(*)::int AS n FROM registry_objects ro JOIN data_sources d ON d.id = ro.data_source_id WHERE d.key = $1', [ds(0)])
    ).rows[0].n;
    assert.deepEqual(t.output, { records: count, changed: count });
    assert.ok(t.logs.some((l) => l.message.includes(`cache entries regenerated: ${count} records`)));
    assert.equal(t.input.logMessage, 'test run');
    assert.ok(t.addedAt <= t.startedAt! && t.startedAt! <= t.completedAt!);
    assert.equal(t.durationMs, Date.parse(t.completedAt!) - Date.parse(t.startedAt!));
    assert.equal(t.attempts, 1);
    const listed = await eventually(async () =>
      (await tm.tasks.listTasks({ status: 'COMPLETED', method: 'GENERATE_CACHE', dataSourceKey: ds(0) })).tasks.find((x) => x.taskId === id),
    );
    assert.equal(listed.status, 'COMPLETED');
    // Its starter set the WAITING attributes and it started in its first workflow task: one patch, then
    // STARTED and COMPLETED with their memos (each write a visibility update on the server).
    assert.deepEqual(await visibilityWrites(tm.tasks.client, id), ['TemporalChangeVersion', 'TaskStatus', 'memo', 'TaskStatus', 'memo']);
  });

  it('an unknown or disabled method is refused by addNewTask with the available methods listed, and nothing starts', async () => {
    await assert.rejects(tm.tasks.addNewTask('NO_SUCH_TASK'), (err: Error) => {
      assert.ok(err instanceof UnknownTaskMethodError);
      assert.match(
        err.message,
        /unknown task method "NO_SUCH_TASK"; available methods: GENERATE_CACHE, HOURLY_REGISTRY_MAINTENANCE, INDEX_RECORDS, RUN_QUALITY_CHECK, SYNC_DATASOURCE/,
      );
      return true;
    });
    await assert.rejects(
      tm.tasks.addNewTask('NOTIFY_SUBSCRIBERS'),
      /task method NOTIFY_SUBSCRIBERS is disabled \(its file begins with "_"\); available methods: GENERATE_CACHE/,
    );
    assert.deepEqual(tm.tasks.availableTasks().disabled, ['NOTIFY_SUBSCRIBERS']);
  });

  it('bad input is refused with the field named, and nothing is written (the delay never reaches SQL)', async () => {
    const before = await snapshot(tm.db.pool);
    await assert.rejects(
      tm.tasks.addNewTask('GENERATE_CACHE', { scheduledFor: "1 hour'; DROP TABLE registry_objects; --" }),
      (err: Error) => err instanceof TaskInputError && /scheduledFor "1 hour'; DROP TABLE/.test(err.message),
    );
    await assert.rejects(tm.tasks.addNewTask('GENERATE_CACHE', { scheduledFor: '3 fortnights' }), /unknown unit "fortnights"/);
    await assert.rejects(tm.tasks.addNewTask('GENERATE_CACHE', { scheduledFor: '2001-01-01T00:00:00Z' }), /is in the past/);
    await assert.rejects(tm.tasks.addNewTask('GENERATE_CACHE', { registryObjectKeys: 'a,b' as never }), /registryObjectKeys must be an array/);
    await assert.rejects(tm.tasks.addNewTask('GENERATE_CACHE', { recurEvery: 'often' }), /recurEvery "often" is not a duration/);
    assert.deepEqual(await snapshot(tm.db.pool), before);
    assert.equal((await tm.db.pool.query('SELECT count(*)::int AS n FROM task_claims')).rows[0].n, 0);
  });

  it('started through the temporal CLI, an unknown method FAILS at once with that message and the worker stays healthy', async () => {
    const id = `cli-unknown-${Date.now()}`;
    await startWithTemporalCli(tm.worker.taskQueue, 'registryTask', id, { method: 'NO_SUCH_TASK' });
    const t = await settled(id);
    assert.equal(t.status, 'FAILED');
    assert.match(t.error!, /unknown task method "NO_SUCH_TASK"; available methods: GENERATE_CACHE/);
    const listed = await eventually(async () => (await tm.tasks.listTasks({ status: 'FAILED' })).tasks.find((x) => x.taskId === id));
    assert.equal(listed.temporalStatus, 'FAILED');
    // The worker still runs tasks.
    assert.equal((await settled(await tm.tasks.addNewTask('INDEX_RECORDS', { registryObjectKeys: [tm.seeded.hubs[0]!.key] }))).status, 'COMPLETED');
  });

  it('a task started from the temporal CLI with plain JSON input runs like one added by the client', async () => {
    const id = `cli-task-${Date.now()}`;
    const input = { method: 'RUN_QUALITY_CHECK', dataSourceKey: ds(1), logMessage: 'from the CLI' };
    await startWithTemporalCli(tm.worker.taskQueue, 'registryTask', id, input);
    const viaCli = await settled(id);
    const viaClient = await settled(await tm.tasks.addNewTask('RUN_QUALITY_CHECK', { dataSourceKey: ds(1), logMessage: 'from the CLI' }));
    const shape = (t: TaskInfo) => ({ status: t.status, method: t.method, input: t.input, output: t.output, logs: t.logs.map((l) => l.message) });
    assert.deepEqual(shape(viaCli), shape(viaClient));
    // Started without search attributes, it sets them itself: listed as the client's task is.
    assert.deepEqual((await visibilityWrites(tm.tasks.client, id)).slice(0, 2), ['TemporalChangeVersion', 'DataSourceKey,TaskMethod,TaskStatus']);
    const listed = await tm.tasks.listTasks({ status: 'COMPLETED', method: 'RUN_QUALITY_CHECK', dataSourceKey: ds(1) });
    assert.ok(listed.tasks.some((t) => t.taskId === id));
  });

  it('a task that throws ends FAILED with its message and log lines', async () => {
    const id = await tm.tasks.addNewTask('RUN_QUALITY_CHECK', { dataSourceKey: 'no-such-source' });
    const t = await settled(id);
    assert.equal(t.status, 'FAILED');
    assert.match(t.error!, /data source "no-such-source" does not exist; data sources: /);
    assert.ok(t.logs.some((l) => l.level === 'error' && l.message.includes('no-such-source')));
  });

  it('a failed prerequisite fails its dependants with the prerequisite id and status in the reason', async () => {
    const failing = await tm.tasks.addNewTask('RUN_QUALITY_CHECK', { dataSourceKey: 'missing-source', scheduledFor: '1 second' });
    const dependant = await tm.tasks.addNewTask('GENERATE_CACHE', { dataSourceKey: ds(2), prerequisiteTaskId: failing });
    const t = await settled(dependant);
    assert.equal(t.status, 'FAILED');
    assert.ok(t.error!.startsWith(`prerequisite task ${failing} is FAILED: data source "missing-source" does not exist`), t.error);
  });

  it('a prerequisite that does not exist is refused at add time (and fails a task started anyway); a cancelled one fails its dependant', async () => {
    await assert.rejects(
      tm.tasks.addNewTask('INDEX_RECORDS', { dataSourceKey: ds(3), prerequisiteTaskId: 'task:NOPE:x:0' }),
      /prerequisite task "task:NOPE:x:0" does not exist/,
    );
    // As the temporal CLI would start it, with nothing checking first:
    const rawId = `raw-missing-prereq-${Date.now()}`;
    await tm.tasks.client.workflow.start('registryTask', {
      taskQueue: tm.worker.taskQueue,
      workflowId: rawId,
      args: [{ method: 'INDEX_RECORDS', dataSourceKey: ds(3), prerequisiteTaskId: 'task:NOPE:x:0' }],
    });
    const missing = await settled(rawId);
    assert.equal(missing.error, 'prerequisite task task:NOPE:x:0 does not exist');
    const waiting = await tm.tasks.addNewTask('RUN_QUALITY_CHECK', { dataSourceKey: ds(3), scheduledFor: '1 hour' });
    const dependant = await tm.tasks.addNewTask('GENERATE_CACHE', { dataSourceKey: ds(3), prerequisiteTaskId: waiting });
    await eventually(async () => (await tm.tasks.getTask(waiting)).dependants.includes(dependant));
    await tm.tasks.cancelTask(waiting);
    const t = await settled(dependant);
    assert.equal(t.error, `prerequisite task ${waiting} is CANCELLED: cancelled`);
  });

  it('a chain of 10 tasks runs in order, each after its prerequisite completed', async () => {
    const methods = ['RUN_QUALITY_CHECK', 'GENERATE_CACHE', 'INDEX_RECORDS'];
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) {
      ids.push(await tm.tasks.addNewTask(methods[i % 3]!, { dataSourceKey: ds(Math.floor(i / 3)), prerequisiteTaskId: ids[i - 1] }));
    }
    assert.equal(new Set(ids).size, 10);
    const done = await Promise.all(ids.map((id) => settled(id, 60_000)));
    for (let i = 0; i < 10; i++) {
      assert.equal(done[i]!.status, 'COMPLETED', `task ${i}: ${done[i]!.error}`);
      if (i)
        assert.ok(
          done[i]!.startedAt! >= done[i - 1]!.completedAt!,
          `task ${i} started after task ${i - 1} completed: ${JSON.stringify(done.map((d) => [d.taskId, d.addedAt, d.startedAt, d.completedAt, d.mergedAdds, d.prerequisiteTaskId]))}`,
        );
    }
  });

  /** Starts a task whose admission waits (storing its keys waits for a lock, as behind a slow database), runs `during`, then lets it go on. */
  const whileAdmitting = async (id: string, input: Record<string, unknown>, during: () => Promise<void>) => {
    const holdingKeys = await tm.db.pool.connect();
    try {
      await holdingKeys.query('BEGIN');
      await holdingKeys.query('LOCK TABLE task_keys IN EXCLUSIVE MODE');
      await tm.tasks.client.workflow.start('registryTask', { taskQueue: tm.worker.taskQueue, workflowId: id, args: [input] });
      await during();
    } finally {
      await holdingKeys.query('COMMIT');
      holdingKeys.release();
    }
  };
  const dueAtOnce = { method: 'GENERATE_CACHE', dataSourceKey: 'admitted-late', registryObjectKeys: ['admitted-late/2'] };

  it('a reschedule that arrives while the task is being admitted wins over its input', async () => {
    const id = `task:GENERATE_CACHE:admission-reschedule:${Date.now()}`;
    const input = { method: 'GENERATE_CACHE', dataSourceKey: 'admitted-late', registryObjectKeys: ['admitted-late/1'], scheduledFor: '1 hour' };
    // Answered while admission still waits: the worker ends the workflow task that waits on a
    // local activity after 80% of its 10 s timeout, and the next one carries the update.
    await whileAdmitting(id, input, async () => void (await tm.tasks.rescheduleTask(id, '3 hours')));
    const info = await eventually(async () => {
      const t = await tm.tasks.getTask(id);
      return t.status === 'WAITING' && t.waitingFor ? t : undefined;
    }, 30_000);
    const hoursAhead = (Date.parse(info.scheduledFor!) - Date.now()) / 3_600_000;
    assert.ok(hoursAhead > 2.9 && hoursAhead <= 3, `scheduled ${hoursAhead.toFixed(2)} hours ahead`);
    await tm.tasks.cancelTask(id);
    await settled(id);
  });

  it('a task due at once, rescheduled while it is admitted, waits for the new time holding its slot', async () => {
    const id = `task:GENERATE_CACHE:due-at-once-rescheduled:${Date.now()}`;
    await whileAdmitting(id, dueAtOnce, async () => void (await tm.tasks.rescheduleTask(id, '2 hours')));
    const info = await eventually(async () => {
      const t = await tm.tasks.getTask(id);
      return t.status === 'WAITING' && t.waitingFor ? t : undefined;
    }, 30_000);
    assert.deepEqual(info.waitingFor, ['schedule']);
    const { rows } = await tm.db.pool.query('SELECT task_id FROM task_claims WHERE method = $1 AND data_source_key = $2', ['GENERATE_CACHE', 'admitted-late']);
    assert.deepEqual(rows, [{ task_id: id }], 'a later add can merge into it');
    await tm.tasks.cancelTask(id);
    assert.equal((await settled(id)).status, 'CANCELLED');
  });

  it('a task due at once, cancelled while it is admitted, ends CANCELLED', async () => {
    const id = `task:GENERATE_CACHE:due-at-once-cancelled:${Date.now()}`;
    await whileAdmitting(id, dueAtOnce, async () => {
      // The server holds the cancel until the workflow task under way ends: the worker ends it at 80%
      // of its 10 s timeout while the local activity goes on, and the next one cancels the admission.
      await new Promise((r) => setTimeout(r, 1_000));
      await tm.tasks.client.workflow.getHandle(id).cancel();
      await new Promise((r) => setTimeout(r, 9_000));
    });
    const t = await settled(id);
    assert.equal(t.status, 'CANCELLED', t.error);
    assert.equal(t.startedAt, undefined, 'it never ran');
    assert.equal(t.keyCount, 1, 'it still names the key its input named');
  });

  it('a reschedule while the task waits for its prerequisite is honoured: it runs after both', async () => {
    const prerequisite = await tm.tasks.addNewTask('RUN_QUALITY_CHECK', { dataSourceKey: ds(1), scheduledFor: '1 hour' });
    const dependant = await tm.tasks.addNewTask('INDEX_RECORDS', { dataSourceKey: ds(1), prerequisiteTaskId: prerequisite });
    const moved = await tm.tasks.rescheduleTask(dependant, '1 hour');
    assert.ok(Date.parse(moved.scheduledFor!) > Date.now() + 3_000_000);
    await tm.tasks.rescheduleTask(prerequisite, '1 second');
    assert.equal((await settled(prerequisite)).status, 'COMPLETED');
    await new Promise((r) => setTimeout(r, 1000));
    const waiting = await tm.tasks.getTask(dependant);
    assert.equal(waiting.status, 'WAITING', 'the prerequisite is done, the new schedule has not come');
    assert.equal(waiting.scheduledFor, moved.scheduledFor);
    await tm.tasks.rescheduleTask(dependant, '1 second');
    assert.equal((await settled(dependant)).status, 'COMPLETED');
  });

  it('a scheduled task is WAITING with its time, can be rescheduled, and runs without anything poking a worker', async () => {
    const id = await tm.tasks.addNewTask('INDEX_RECORDS', { dataSourceKey: ds(1), scheduledFor: '1 hour' });
    const waiting = await tm.tasks.getTask(id);
    assert.equal(waiting.status, 'WAITING');
    assert.deepEqual(waiting.waitingFor, ['schedule']);
    assert.ok(Math.abs(Date.parse(waiting.scheduledFor!) - (Date.now() + 3_600_000)) < 60_000);
    const moved = await tm.tasks.rescheduleTask(id, '2 seconds');
    assert.ok(Date.parse(moved.scheduledFor!) < Date.now() + 10_000);
    const t = await settled(id);
    assert.equal(t.status, 'COMPLETED');
    assert.ok(Date.parse(t.startedAt!) >= Date.parse(moved.scheduledFor!));
    await assert.rejects(
      tm.tasks.rescheduleTask(id, '1 hour'),
      (err: Error) => err instanceof TaskStateError && /only WAITING tasks can be rescheduled/.test(err.message),
    );
  });

  it('a waiting task can be cancelled, and retried with the same inputs', async () => {
    const id = await tm.tasks.addNewTask('GENERATE_CACHE', { dataSourceKey: ds(2), scheduledFor: '1 hour', logMessage: 'to cancel' });
    await tm.tasks.cancelTask(id);
    const t = await settled(id);
    assert.equal(t.status, 'CANCELLED');
    assert.equal(t.startedAt, undefined);
    const again = await tm.tasks.retryTask(id);
    assert.notEqual(again, id);
    const retried = await tm.tasks.getTask(again);
    assert.equal(retried.input.logMessage, 'to cancel');
    assert.equal(retried.input.scheduledFor, undefined, 'a retry runs now');
    assert.equal((await settled(again)).status, 'COMPLETED');
  });

  it('an add merges into the WAITING task of its method and data source only when that task covers it, also under concurrent adds', async () => {
    const first = await tm.tasks.addNewTask('RUN_QUALITY_CHECK', { dataSourceKey: ds(0), scheduledFor: '1 hour', registryObjectKeys: ['k/1', 'k/2', 'k/3'] });
    // Covered: a subset of its keys, asking for the same start.
    const covered = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        tm.tasks.addNewTask('RUN_QUALITY_CHECK', { dataSourceKey: ds(0), scheduledFor: '1 hour', registryObjectKeys: [`k/${(i % 3) + 1}`] }),
      ),
    );
    assert.deepEqual(new Set(covered), new Set([first]));
    const holder = await tm.tasks.getTask(first);
    assert.deepEqual([...holder.input.registryObjectKeys!].sort(), ['k/1', 'k/2', 'k/3'], 'a merge never changes the waiting task');
    assert.equal(holder.mergedAdds, 6);
    // Merged by the client: no execution was started only to end MERGED (the Web UI stays clean).
    await new Promise((r) => setTimeout(r, 1000));
    const merged = await tm.tasks.client.workflowService.countWorkflowExecutions({
      namespace: 'default',
      query: `TaskQueue = '${tm.worker.taskQueue}' AND TaskStatus = 'MERGED'`,
    });
    assert.equal(Number(merged.count), 0);
    // Not covered: another key, an earlier start, a prerequisite, a recurrence: each its own task, nothing lost.
    const ownTasks = [
      await tm.tasks.addNewTask('RUN_QUALITY_CHECK', { dataSourceKey: ds(0), scheduledFor: '1 hour', registryObjectKeys: ['k/4'] }),
      await tm.tasks.addNewTask('RUN_QUALITY_CHECK', { dataSourceKey: ds(0), scheduledFor: '10 minutes', registryObjectKeys: ['k/1'] }),
      await tm.tasks.addNewTask('RUN_QUALITY_CHECK', { dataSourceKey: ds(0), scheduledFor: '1 hour', registryObjectKeys: ['k/1'], prerequisiteTaskId: first }),
      await tm.tasks.addNewTask('RUN_QUALITY_CHECK', { dataSourceKey: ds(0), scheduledFor: '1 hour', registryObjectKeys: ['k/1'], recurEvery: '1 day' }),
    ];
    assert.equal(new Set([first, ...ownTasks]).size, 5);
    const recurring = await tm.tasks.getTask(ownTasks[3]!);
    assert.equal(recurring.status, 'WAITING');
    assert.equal(recurring.input.recurEvery, '1 day', 'the recurrence is kept');
    assert.deepEqual((await tm.tasks.getTask(ownTasks[0]!)).input.registryObjectKeys, ['k/4']);
    // Concurrent adds with no WAITING task yet: exactly one task is created.
    const racing = await Promise.all(Array.from({ length: 6 }, () => tm.tasks.addNewTask('INDEX_RECORDS', { dataSourceKey: ds(2), scheduledFor: '1 hour' })));
    assert.equal(new Set(racing).size, 1);
    // Another data source or method is another task.
    const other = await tm.tasks.addNewTask('RUN_QUALITY_CHECK', { dataSourceKey: ds(1), scheduledFor: '1 hour' });
    assert.notEqual(other, first);
    const all = [first, ...ownTasks, racing[0]!, other];
    await Promise.all(all.map((id) => tm.tasks.cancelTask(id)));
    await Promise.all(all.map((id) => settled(id)));
  });

  it('an add never merges into a task that is being cancelled', async () => {
    const first = await tm.tasks.addNewTask('GENERATE_CACHE', { dataSourceKey: ds(3), scheduledFor: '1 hour' });
    await tm.tasks.cancelTask(first);
    const second = await tm.tasks.addNewTask('GENERATE_CACHE', { dataSourceKey: ds(3), scheduledFor: '1 hour' });
    assert.notEqual(second, first);
    assert.equal((await settled(first)).status, 'CANCELLED');
    assert.equal((await tm.tasks.getTask(second)).status, 'WAITING');
    await tm.tasks.cancelTask(second);
    await settled(second);
  });

  it('a loop\u2019s next runs go on beside an identical WAITING one-off task: neither merges into the other', async () => {
    const oneOff = await tm.tasks.addNewTask('GENERATE_CACHE', { dataSourceKey: 'gone-source', scheduledFor: '1 hour' });
    const loop = await tm.tasks.addNewTask('GENERATE_CACHE', { dataSourceKey: 'gone-source', recurEvery: '100 milliseconds' });
    assert.notEqual(loop, oneOff);
    const ran = await eventually(async () => {
      const info = await tm.tasks.getTask(loop);
      return (info.iteration ?? 0) >= 3 ? info : undefined;
    }, 60_000);
    assert.ok(ran.status !== 'MERGED' && ran.recentRuns!.length >= 3, 'the loop ran on');
    const held = await tm.tasks.getTask(oneOff);
    assert.deepEqual([held.status, held.mergedAdds], ['WAITING', undefined], 'no run of the loop merged into the one-off task');
    await Promise.all([loop, oneOff].map((id) => tm.tasks.cancelTask(id)));
    assert.deepEqual(
      (await Promise.all([loop, oneOff].map((id) => settled(id)))).map((t) => t.status),
      ['CANCELLED', 'CANCELLED'],
    );
  });

  it('a recurring task runs again through continue-as-new, records failed runs, keeps its history small, and stops on one cancel', async () => {
    const id = await tm.tasks.addNewTask('RUN_QUALITY_CHECK', { dataSourceKey: 'gone-source', recurEvery: '100 milliseconds' });
    const t = await eventually(async () => {
      const info = await tm.tasks.getTask(id);
      return (info.iteration ?? 0) >= 8 ? info : undefined;
    }, 60_000);
    assert.ok(t.recentRuns!.length >= 8);
    assert.ok(
      t.recentRuns!.every((r) => r.status === 'FAILED' && /gone-source/.test(r.error!)),
      'failed runs are recorded and the loop goes on',
    );
    const history = await tm.tasks.client.workflow.getHandle(id).fetchHistory();
    assert.ok(history.events!.length < 60, `the current run's history has ${history.events!.length} events`);
    await tm.tasks.cancelTask(id);
    const cancelled = await settled(id);
    assert.equal(cancelled.status, 'CANCELLED');
    const iteration = cancelled.iteration;
    await new Promise((r) => setTimeout(r, 500));
    assert.equal((await tm.tasks.getTask(id)).iteration, iteration, 'no run after the cancel');
  });

  it('SYNC_DATASOURCE queues quality check -> cache -> index as a prerequisite chain', async () => {
    const t = await settled(await tm.tasks.addNewTask('SYNC_DATASOURCE', { dataSourceKey: ds(3) }));
    assert.equal(t.status, 'COMPLETED', t.error);
    const chain = (t.output as { tasks: string[] }).tasks;
    assert.deepEqual(
      chain.map((id) => id.split('-').pop()),
      ['RUN_QUALITY_CHECK', 'GENERATE_CACHE', 'INDEX_RECORDS'].map((m) => m),
    );
    const done = await Promise.all(chain.map((id) => settled(id)));
    assert.deepEqual(
      done.map((d) => d.status),
      ['COMPLETED', 'COMPLETED', 'COMPLETED'],
    );
    assert.equal(done[1]!.prerequisiteTaskId, chain[0]);
    assert.equal(done[2]!.prerequisiteTaskId, chain[1]);
    assert.ok(done[1]!.startedAt! >= done[0]!.completedAt! && done[2]!.startedAt! >= done[1]!.completedAt!);
  });

  it('RUN_QUALITY_CHECK with neither keys nor data source fans out one sub-task per data source', async () => {
    const t = await settled(await tm.tasks.addNewTask('RUN_QUALITY_CHECK', {}));
    const subtasks = (t.output as { subtasks: string[] }).subtasks;
    assert.equal(subtasks.length, tm.seeded.dataSources.length);
    const done = await Promise.all(subtasks.map((id) => settled(id)));
    assert.deepEqual(new Set(done.map((d) => d.status)), new Set(['COMPLETED']));
  });

  it('HOURLY_REGISTRY_MAINTENANCE queues repair of stale records and fills missing cache entries', async () => {
    const stale = (
      await tm.db.pool.query<{ key: string }>(
        "UPDATE registry_objects SET title = title || ' (edited)', updated_at = now() WHERE id IN (SELECT id FROM registry_objects ORDER BY id LIMIT 3) RETURNING key",
      )
    ).rows.map((r) => r.key);
    // A new title is an input of the record's own derived state and of its related records' (their index and cache show it).
    const expectedStale = (
      await tm.db.pool.query(
        'SELECT count(*)::int AS n FROM (SELECT ro.id FROM registry_objects ro WHERE ro.key = ANY($1) UNION SELECT rr.related_id FROM registry_objects ro, related_records(ro.id, ro.key) rr WHERE ro.key = ANY($1)) x',
        [stale],
      )
    ).rows[0].n;
    await tm.db.pool.query('DELETE FROM record_cache WHERE record_id IN (SELECT id FROM registry_objects ORDER BY id DESC LIMIT 2)');
    // The Health view's history past its two days goes with the rest of retention; a recent row stays.
    await tm.db.pool.query(
      `INSERT INTO task_run_outcomes (task_id, iteration, method, status, finished_at) VALUES ('task:old-run', 0, 'INDEX_RECORDS', 'COMPLETED', now() - interval '3 days'), ('task:recent-run', 0, 'INDEX_RECORDS', 'COMPLETED', now())`,
    );
    await tm.db.pool.query(`INSERT INTO followup_lag_samples VALUES (date_trunc('minute', now()) - interval '3 days', 'old-source', 1, 1)`);
    const t = await settled(await tm.tasks.addNewTask('HOURLY_REGISTRY_MAINTENANCE'), 60_000);
    assert.equal(t.status, 'COMPLETED', t.error);
    const out = t.output as { staleRecords: number; repairTasks: string[]; filledCacheEntries: number };
    assert.equal(out.staleRecords, expectedStale);
    // A repair that regenerates the cache may fill an entry before maintenance reaches it.
    assert.ok(out.filledCacheEntries >= 1 && out.filledCacheEntries <= 2, `filled ${out.filledCacheEntries}`);
    const repairs = await Promise.all(out.repairTasks.map((id) => settled(id)));
    assert.ok(repairs.every((r) => r.status === 'COMPLETED'));
    assert.equal(
      (
        await tm.db.pool.query(
          'SELECT count(*)::int AS n FROM registry_objects ro LEFT JOIN record_cache rc ON rc.record_id = ro.id WHERE rc.record_id IS NULL',
        )
      ).rows[0].n,
      0,
    );
    const fresh = await tm.db.pool.query(
      `SELECT ro.key FROM registry_objects ro JOIN record_index ri ON ri.record_id = ro.id JOIN record_cache rc ON rc.record_id = ro.id
        WHERE ro.key = ANY($1) AND ri.indexed_at >= ro.updated_at AND rc.generated_at >= ro.updated_at AND rc.rendering->>'title' = ro.title`,
      [stale],
    );
    assert.equal(fresh.rowCount, 3);
    const kept = await tm.db.pool.query<{ task_id: string }>(`SELECT task_id FROM task_run_outcomes WHERE task_id IN ('task:old-run', 'task:recent-run')`);
    assert.deepEqual(
      kept.rows.map((r) => r.task_id),
      ['task:recent-run'],
    );
    assert.equal((await tm.db.pool.query(`SELECT 1 FROM followup_lag_samples WHERE data_source_key = 'old-source'`)).rowCount, 0);
  });
});
