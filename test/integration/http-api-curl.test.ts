/**
 * The README's curl examples for registry code in any language (Temporal's HTTP API, plain JSON),
 * run as written against the test server's HTTP port: a task is added and read back, and a record
 * is deleted with its follow-up.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { TaskClient } from '../../src/client/task-client.ts';
import { PROJECT_ROOT } from '../../src/config.ts';
import { seedRegistry } from '../../src/registry/seed.ts';
import { createTestDatabase, eventually, settledTask, startTestWorker, temporalAddress, type TestDatabase, type TestWorker } from '../helpers.ts';

const exec = promisify(execFile);

/** The sh block between the README's http-api-example markers. */
function readmeExample(): string {
  const readme = fs.readFileSync(path.join(PROJECT_ROOT, 'README.md'), 'utf8');
  const block = /<!-- http-api-example -->\s*```sh\n([\s\S]*?)```\s*<!-- \/http-api-example -->/.exec(readme);
  assert.ok(block, 'README.md has the http-api-example block');
  return block[1]!;
}

describe("the README's HTTP API examples (registry code without a Temporal SDK)", () => {
  let db: TestDatabase;
  let worker: TestWorker;
  let tasks: TaskClient;

  before(async () => {
    db = await createTestDatabase();
    await seedRegistry(db.pool, { records: 400, dataSources: 3, seed: 3 });
    worker = await startTestWorker(db.pool);
    tasks = new TaskClient(new Client({ connection: await Connection.connect({ address: temporalAddress() }) }), worker.taskQueue, { pool: db.pool });
  });
  after(async () => {
    await worker?.stop();
    await tasks?.close();
    await db?.drop();
  });

  it('add a task, read its status, delete a record: the block runs as written', async () => {
    const key = 'csiro/collection/000042';
    assert.equal((await db.pool.query('SELECT 1 FROM registry_objects WHERE key = $1', [key])).rowCount, 1, `the seeded registry has ${key}`);
    const script = readmeExample().replaceAll('"registry-tasks"', JSON.stringify(worker.taskQueue));
    const { stdout } = await exec('bash', ['-euo', 'pipefail', '-c', script], {
      env: { ...process.env, TEMPORAL_HTTP: process.env.TEST_TEMPORAL_HTTP_URL! },
      timeout: 60_000,
    });
    const task = await settledTask(tasks, 'task:reindex-csiro');
    assert.equal(task.status, 'COMPLETED');
    assert.equal(task.input.logMessage, 'reindex after the harvest');
    await eventually(async () => (await db.pool.query('SELECT 1 FROM registry_objects WHERE key = $1', [key])).rowCount === 0);
    assert.match(stdout, /"status": "(WAITING|STARTED|COMPLETED)"/);
    assert.match(stdout, /"deleted": true/);
  });
});
