/** Which errors mean "the database went away" (wait and retry) and which are the data's (fail or quarantine). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { databaseUnavailable } from '../../src/activities/task-activities.ts';
import { isDataError } from '../../src/registry/quarantine.ts';

describe('database error classes', () => {
  it('a lost or refused connection is an outage, in every form node-postgres reports it', () => {
    for (const err of [
      new Error('Connection terminated unexpectedly'),
      new Error('Client has encountered a connection error and is not queryable'),
      new Error('connect ECONNREFUSED 127.0.0.1:5432'),
      Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' }),
      Object.assign(new Error('the database system is starting up'), { code: '57P03' }),
    ]) {
      assert.ok(databaseUnavailable(err), err.message);
      assert.ok(!isDataError(err), err.message);
    }
  });

  it('data exceptions, integrity and cardinality violations and limits are the data\u2019s, not an outage', () => {
    for (const code of ['22P05', '22001', '23505', '23514', '21000', '54000']) {
      const err = Object.assign(new Error(`sqlstate ${code}`), { code });
      assert.ok(isDataError(err), code);
      assert.ok(!databaseUnavailable(err), code);
    }
    assert.ok(!isDataError(Object.assign(new Error('deadlock'), { code: '40P01' })), 'a deadlock is retried, not quarantined');
  });
});
