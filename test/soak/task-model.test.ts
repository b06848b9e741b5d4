/**
 * Model-based test: random sequences of task operations (add with keys, schedule, prerequisite and
 * recurrence; cancel; reschedule; retry; retention; worker restarts) run against the real Temporal
 * server and PostgreSQL, and every task's observable state is compared with the reference model
 * (test/task-model.ts) after each step. Fixed seed; MODEL_RUNS and MODEL_SEED for longer or other
 * runs. A failing sequence is printed as JSON that MODEL_REPLAY runs again as it is.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { Client, Connection } from '@temporalio/client';
import { TaskClient, TaskNotFoundError } from '../../src/client/task-client.ts';
import type { TaskInfo } from '../../src/taskmgr/info.ts';
import { seedRegistry } from '../../src/registry/seed.ts';
import { createTestDatabase, startTestWorker, temporalAddress, uniqueName, type TestDatabase, type TestWorker } from '../helpers.ts';
import { keysOf, METHODS, TaskModel, type AddOutcome, type ModelTask, type Step } from '../task-model.ts';

const RUNS = Number(process.env.MODEL_RUNS ?? 50);
const SEED = Number(process.env.MODEL_SEED ?? 20261129);
/**
 * The longest a step may take: its convergence waits 30 s, a flush 15 s more for visibility. A
 * step past it is a hang (an answer that never comes), reported with the step, not the run's timeout.
 */
const STEP_LIMIT_MS = 120_000;

/** `work`, or an error naming `what` when it has not settled within `ms` (the work itself is abandoned). */
async function within<T>(ms: number, what: string, work: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms / 1000} s`)), ms)));
  try {
    return await Promise.race([work(), late]);
  } finally {
    clearTimeout(timer);
  }
}

const step: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant('add' as const),
      method: fc.integer({ min: 0, max: 1 }),
      ds: fc.integer({ min: 0, max: 1 }),
      keys: fc.integer({ min: 0, max: 7 }),
      far: fc.boolean(),
      prereq: fc.option(fc.nat(20), { nil: null }),
      recur: fc.boolean(),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('cancel' as const), task: fc.nat(20) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('release' as const), task: fc.nat(20) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('retry' as const), task: fc.nat(20) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'flush' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'restart' as const }) },
);

describe('the task manager against its reference model', () => {
  let db: TestDatabase;
  let dataSources: string[];
  let client: Client;

  before(async () => {
    db = await createTestDatabase();
    dataSources = (await seedRegistry(db.pool, { records: 60, dataSources: 2, hubs: 1, hubSize: 5, seed: 3 })).dataSources;
    client = new Client({ connection: await Connection.connect({ address: temporalAddress() }) });
  });
  after(async () => {
    await client?.connection.close();
    await db?.drop();
  });

  /** Runs one sequence on a task queue of its own; throws with the sequence on the first disagreement. */
  async function runSequence(steps: Step[]): Promise<void> {
    const taskQueue = uniqueName('registry-tasks-model');
    let worker: TestWorker = await startTestWorker(db.pool, taskQueue);
    const tasks = new TaskClient(client, taskQueue, { pool: db.pool });
    const model = new TaskModel();
    const ids: string[] = [];
    // Steps name tasks not flushed: a flushed execution lingers until the server deletes it in the
    // background, so what an operation on it does depends on timing the model cannot know.
    const present = () => model.tasks.map((t, i) => (t.gone ? -1 : i)).filter((i) => i >= 0);
    const pick = (n: number) => {
      const live = present();
      return live.length ? live[n % live.length] : undefined;
    };
    let abandoned = false;
    /** One step, then the wait until every task shows the model's state. */
    async function runStep(s: Step, where: string): Promise<void> {
      if (s.kind === 'add') {
        // Prerequisites name a one-off task (a loop's runs end at timing the model does not follow).
        const candidates = present().filter((i) => !model.tasks[i]!.recur);
        const prereq = s.prereq === null || candidates.length === 0 ? null : candidates[s.prereq % candidates.length]!;
        const spec = { method: METHODS[s.method]!, ds: s.ds, keys: keysOf(s.keys), far: s.far, prereq, recur: s.recur && prereq === null };
        const expected = model.add(spec);
        const actual = await tasks
          .addNewTask(spec.method, {
            dataSourceKey: dataSources[spec.ds],
            ...(spec.keys ? { registryObjectKeys: spec.keys } : {}),
            ...(spec.far ? { scheduledFor: '1 hour' } : {}),
            ...(prereq !== null ? { prerequisiteTaskId: ids[prereq] } : {}),
            ...(spec.recur ? { recurEvery: '1 hour' } : {}),
          })
          .then(
            (id) => ({ id }),
            (err: Error) => ({ err }),
          );
        checkAdd(expected, actual, ids, where);
      } else if (s.kind === 'cancel' || s.kind === 'release') {
        const i = pick(s.task);
        if (i === undefined) return;
        const refused = s.kind === 'cancel' ? model.cancel(i) : model.release(i);
        const actual = await (s.kind === 'cancel' ? tasks.cancelTask(ids[i]!) : tasks.rescheduleTask(ids[i]!, '1 second')).then(
          () => undefined,
          (err: Error) => err,
        );
        assert.equal(actual === undefined, refused === undefined, `${where}: model ${refused ?? 'accepts'}, real ${actual?.message ?? 'accepts'}`);
      } else if (s.kind === 'retry') {
        const i = pick(s.task);
        // A retry names the task's prerequisite again: skipped when that one was flushed (see present()).
        const prereq = i === undefined ? null : model.tasks[i]!.prereq;
        if (i === undefined || (prereq !== null && model.tasks[prereq]!.gone)) return;
        const expected = model.retry(i);
        const actual = await tasks.retryTask(ids[i]!).then(
          (id) => ({ id }),
          (err: Error) => ({ err }),
        );
        checkAdd(expected, actual, ids, where);
      } else if (s.kind === 'flush') {
        await converge(model, ids, tasks, where); // retention sees what visibility lists
        await listed(model, ids, tasks);
        model.flush();
        await tasks.flushTasks({ completedBefore: new Date(Date.now() + 60_000) });
      } else {
        await worker.stop();
        const next = await startTestWorker(db.pool, taskQueue);
        // A step past its limit is abandoned, and its worker stopped by the cleanup: not replaced behind its back.
        if (abandoned) return next.stop();
        worker = next;
      }
      await converge(model, ids, tasks, where);
    }
    /** Leaves no WAITING task holding a slot for the next sequence: cancelled, and the cancel carried out. */
    async function cancelAll(): Promise<void> {
      await Promise.all(ids.map((id) => tasks.cancelTask(id).catch(() => undefined)));
      for (const deadline = Date.now() + 30_000; Date.now() < deadline;) {
        const statuses = await Promise.all(
          ids.map((id) =>
            tasks.getTask(id).then(
              (t) => t.status,
              () => 'GONE',
            ),
          ),
        );
        if (!statuses.includes('WAITING') && !statuses.includes('STARTED')) break;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    let failure: unknown;
    try {
      for (const [n, s] of steps.entries()) {
        const where = `step ${n} ${JSON.stringify(s)} of ${JSON.stringify(steps)}`;
        const t0 = Date.now();
        if (process.env.MODEL_TRACE) console.error(`TRACE ${new Date().toISOString()} ${taskQueue} step ${n} ${JSON.stringify(s)}`);
        await within(STEP_LIMIT_MS, where, () => runStep(s, where));
        if (process.env.MODEL_TRACE) console.error(`TRACE ${taskQueue} step ${n} took ${Date.now() - t0} ms`);
      }
    } catch (err) {
      failure = err;
    }
    // Cleanup always stops the worker, and never hides the step's own failure.
    abandoned = true;
    const cleanup: [string, () => Promise<void>][] = [
      [`cancelling the tasks of ${JSON.stringify(steps)}`, cancelAll],
      [`stopping the worker of ${JSON.stringify(steps)}`, () => worker.stop()],
    ];
    for (const [what, work] of cleanup) await within(STEP_LIMIT_MS, what, work).catch((err: unknown) => (failure ??= err));
    if (failure) throw failure;
  }

  it(`${RUNS} random sequences of 10 to 16 steps agree with the model`, { timeout: 30 * 60_000 }, async () => {
    if (process.env.MODEL_REPLAY) return runSequence(JSON.parse(process.env.MODEL_REPLAY) as Step[]);
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 10, maxLength: 16 }), (steps) => runSequence(steps)),
      { numRuns: RUNS, seed: SEED, endOnFailure: true, verbose: 1 },
    );
  });
});

function checkAdd(expected: AddOutcome, actual: { id: string } | { err: Error }, ids: string[], where: string) {
  if ('refused' in expected) {
    assert.ok('err' in actual, `${where}: the model refuses (${expected.refused}), the real add gave ${'id' in actual ? actual.id : ''}`);
    return;
  }
  assert.ok('id' in actual, `${where}: the real add failed: ${'err' in actual ? actual.err.message : ''}`);
  if ('mergedInto' in expected) assert.equal(actual.id, ids[expected.mergedInto], `${where}: expected a merge into task ${expected.mergedInto}`);
  else {
    assert.ok(!ids.includes(actual.id), `${where}: expected a new task, got the existing ${actual.id}`);
    ids.push(actual.id);
  }
}

/** Waits until every task shows the model's status (tasks run, dependants follow, deletions land); fails with the differences. */
async function converge(model: TaskModel, ids: string[], tasks: TaskClient, where: string) {
  // A recurring task WAITING is also told by its finished runs: before its first run and between
  // two runs it is WAITING alike, and the next step may come before that first run starts.
  const status = (t: TaskInfo, i: number) =>
    model.tasks[i]?.recur && t.status === 'WAITING' ? `WAITING after ${(t.iteration ?? 0) + (t.lastRunStatus ? 1 : 0)} runs` : t.status;
  // Besides the status, what the task was asked to do: a merge or a retry must not change it.
  const shown = (t: TaskInfo, i: number) => `${status(t, i)} ${t.method} keys:${t.keyCount ?? 0} after:${t.prerequisiteTaskId ?? '-'}`;
  const modelled = (t: ModelTask, status: string) => `${status} ${t.method} keys:${t.keys?.length ?? 0} after:${t.prereq === null ? '-' : ids[t.prereq]}`;
  const observe = () =>
    Promise.all(
      ids.map((id, i) =>
        tasks.getTask(id).then(
          (t) => shown(t, i),
          (err: Error) => (err instanceof TaskNotFoundError ? 'GONE' : Promise.reject(err)),
        ),
      ),
    );
  // The server deletes flushed executions in the background (tens of seconds on the dev server):
  // a flushed task may still show its last status, but never another one.
  const expected = model.tasks.map((t) => (t.gone ? 'GONE' : modelled(t, t.recur && t.status === 'WAITING' ? `WAITING after ${t.runs} runs` : t.status)));
  const allowed = (s: string, i: number) => s === expected[i] || (model.tasks[i]!.gone && s === modelled(model.tasks[i]!, model.tasks[i]!.status));
  let actual: string[] = [];
  for (const deadline = Date.now() + 30_000; Date.now() < deadline;) {
    actual = await observe();
    if (actual.every(allowed)) return;
    await new Promise((r) => setTimeout(r, 150));
  }
  assert.deepEqual(actual, expected, `${where}: the tasks' states differ from the model's`);
}

/** Waits until visibility lists every closed task the model will flush. */
async function listed(model: TaskModel, ids: string[], tasks: TaskClient) {
  const closed = ids.filter((_, i) => !model.tasks[i]!.gone && (model.tasks[i]!.status === 'COMPLETED' || model.tasks[i]!.status === 'CANCELLED'));
  for (const deadline = Date.now() + 15_000; Date.now() < deadline;) {
    const seen = new Set<string>();
    for (let token: string | undefined, first = true; first || token; first = false) {
      const page = await tasks.listTasks({ status: ['COMPLETED', 'CANCELLED'], pageSize: 1000, pageToken: token });
      page.tasks.forEach((t) => seen.add(t.taskId));
      token = page.nextPageToken;
    }
    if (closed.every((id) => seen.has(id))) return;
    await new Promise((r) => setTimeout(r, 200));
  }
}
