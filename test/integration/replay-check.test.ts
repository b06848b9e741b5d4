/**
 * `taskmgr replay-check` on the server's recent histories of this task queue: the current code
 * replays them all (exit 0); workflow code changed in a way running executions cannot survive is
 * caught (exit 1, the executions named).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { TaskClient } from '../../src/client/task-client.ts';
import { PROJECT_ROOT } from '../../src/config.ts';
import { seedRegistry } from '../../src/registry/seed.ts';
import { createTestDatabase, settledTask, startTestWorker, temporalAddress, type TestDatabase, type TestWorker } from '../helpers.ts';

const exec = promisify(execFile);

describe('taskmgr replay-check', () => {
  let db: TestDatabase;
  let worker: TestWorker;
  let tasks: TaskClient;

  before(async () => {
    db = await createTestDatabase();
    await seedRegistry(db.pool, { records: 100, dataSources: 1, seed: 5 });
    worker = await startTestWorker(db.pool);
    tasks = new TaskClient(new Client({ connection: await Connection.connect({ address: temporalAddress() }) }), worker.taskQueue, { pool: db.pool });
    for (const method of ['INDEX_RECORDS', 'GENERATE_CACHE']) await settledTask(tasks, await tasks.addNewTask(method, { dataSourceKey: 'uni-melbourne' }));
  });
  after(async () => {
    await worker?.stop();
    await tasks?.close();
    await db?.drop();
  });

  const replayCheck = (...args: string[]) =>
    exec(process.execPath, [path.join(PROJECT_ROOT, 'bin', 'taskmgr.js'), 'replay-check', ...args], {
      env: { ...process.env, TEMPORAL_ADDRESS: temporalAddress(), TEMPORAL_TASK_QUEUE: worker.taskQueue },
      timeout: 120_000,
    }).then(
      ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
      (err: { code: number; stdout: string; stderr: string }) => ({ code: err.code, stdout: err.stdout, stderr: err.stderr }),
    );

  it('replays every recent history of the queue on the current code', async () => {
    const out = await replayCheck('--since', '1 hour');
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stdout, /replayed 2 histories .*\(0 coalesceFollowUps, 0 deleteRecord, 0 registryOperation, 2 registryTask\): all replay on this code/);
  });

  it('catches workflow code that running executions would not survive, naming them', async () => {
    const out = await replayCheck('--workflows', path.join(PROJECT_ROOT, 'test', 'fixtures', 'changed-workflows', 'index.ts'));
    assert.equal(out.code, 1);
    assert.match(out.stderr, /non-deterministic: task:/);
    assert.match(out.stderr, /taskmgr: 2 of 2 histories do not replay on .*changed-workflows.*: running executions would fail on it; do not deploy it/);
  });
});
