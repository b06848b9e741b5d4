/** One base class for the caller's errors: the HTTP API answers each with its status and the field it names. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DataRejectedError, InvalidInputError, OperationRefusedError, RecordNotFoundError } from '../../src/client/registry.ts';
import { TaskNotFoundError, TaskStateError } from '../../src/client/task-client.ts';
import { TemporalUnreachableError } from '../../src/client/connection.ts';
import { QueuedForWorkerError } from '../../src/client/worker-wait.ts';
import { ConfigError } from '../../src/config.ts';
import { toHttpError } from '../../src/http/errors.ts';
import { UnknownTaskMethodError } from '../../src/taskmgr/discovery.ts';
import { DurationError } from '../../src/taskmgr/duration.ts';
import { TaskInputError } from '../../src/taskmgr/input.ts';
import { SetupError, UserError } from '../../src/user-error.ts';

describe("the caller's errors", () => {
  it('each answers HTTP with its own status, and the field and allowed values it names', () => {
    const cases: [UserError, number][] = [
      [new TaskInputError('scheduledFor', 'scheduledFor "soon" is not a duration'), 400],
      [new DurationError('"x" is not a duration'), 400],
      [new InvalidInputError('record key must not be empty'), 400],
      [new UnknownTaskMethodError('unknown task method "X"', { field: 'method', allowed: ['GENERATE_CACHE'] }), 400],
      [new TaskNotFoundError('task "t" does not exist'), 404],
      [new RecordNotFoundError('record "r" does not exist'), 404],
      [new TaskStateError('task t is COMPLETED'), 409],
      [new OperationRefusedError('a published record is not a draft'), 409],
      [new DataRejectedError('PostgreSQL refused the data'), 422],
      [new TemporalUnreachableError('Temporal at 127.0.0.1:7233 does not answer'), 503],
    ];
    for (const [err, status] of cases) {
      const answer = toHttpError(err);
      assert.equal(answer.status, status, err.name);
      assert.equal((answer.body as { error: string }).error, err.message);
    }
    assert.deepEqual(toHttpError(cases[0]![0]).body, { error: 'scheduledFor "soon" is not a duration', field: 'scheduledFor' });
    assert.deepEqual(toHttpError(cases[3]![0]).body, { error: 'unknown task method "X"', field: 'method', allowed: ['GENERATE_CACHE'] });
  });

  it('work queued for a worker is a 202; a setup error or a bug is a 500 that shows nothing of it', () => {
    assert.deepEqual(toHttpError(new QueuedForWorkerError('queued')), { status: 202, body: { queued: true, message: 'queued' } });
    const setup = new ConfigError('DATABASE_URL "mysql://x" must be postgres://');
    assert.ok(setup instanceof SetupError && setup instanceof UserError);
    assert.deepEqual(toHttpError(setup), { status: 500, body: { error: 'internal error; see the server log' } });
    assert.deepEqual(toHttpError(new Error('a bug')), { status: 500, body: { error: 'internal error; see the server log' } });
  });
});
