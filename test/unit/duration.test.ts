import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatDuration, parseDuration, resolveScheduledFor } from '../../src/taskmgr/duration.ts';
import { validateTaskInput } from '../../src/taskmgr/input.ts';

const NOW = Date.parse('2026-11-29T00:00:00Z');

describe('durations', () => {
  it('reads the original delay strings and common abbreviations', () => {
    assert.equal(parseDuration('15 seconds'), 15_000);
    assert.equal(parseDuration('1 hour'), 3_600_000);
    assert.equal(parseDuration('7 days'), 604_800_000);
    assert.equal(parseDuration('1 minute'), 60_000);
    assert.equal(parseDuration('30 min'), 1_800_000);
    assert.equal(parseDuration('1.5 hours'), 5_400_000);
    assert.equal(parseDuration('250ms'), 250);
    assert.equal(parseDuration(' 2 Weeks '), 1_209_600_000);
  });

  it('names the bad value and the allowed forms', () => {
    assert.throws(
      () => parseDuration('soon'),
      /duration "soon" is not a duration; expected "<number> <unit>" with unit milliseconds, seconds, minutes, hours, days or weeks/,
    );
    assert.throws(() => parseDuration('3 fortnights'), /unknown unit "fortnights"/);
    assert.throws(() => parseDuration("1 hour'; DROP TABLE x; --"), /is not a duration/);
    assert.throws(() => parseDuration('-1 hour'), /is not a duration/);
    assert.throws(() => parseDuration(''), /is not a duration/);
  });

  it('resolves scheduledFor as a delay or an ISO time, refusing the past and the far future', () => {
    assert.equal(resolveScheduledFor('1 hour', NOW), NOW + 3_600_000);
    assert.equal(resolveScheduledFor('2026-11-30T10:00:00Z', NOW), Date.parse('2026-11-30T10:00:00Z'));
    assert.equal(resolveScheduledFor('2026-11-29T10:00:00+10:00', NOW), NOW, 'now, written in another zone');
    assert.throws(() => resolveScheduledFor('2026-11-28T00:00:00Z', NOW), /is in the past/);
    assert.throws(
      () => resolveScheduledFor('tomorrowish', NOW),
      /^DurationError: scheduledFor "tomorrowish" is not a duration; expected "<number> <unit>" .*, or an ISO timestamp with a time zone \(e\.g\. "2026-12-01T09:00:00Z"\)$/,
    );
    assert.throws(() => resolveScheduledFor('2030-01-01T00:00:00Z', NOW), /more than 366 days ahead/);
    assert.throws(() => resolveScheduledFor('400 days', NOW), /more than 366 days ahead/);
    assert.throws(() => resolveScheduledFor('2026-12-01', NOW), /not an ISO timestamp with a time zone/);
    assert.throws(() => resolveScheduledFor('2026-13-45T00:00:00Z', NOW), /not a valid date/);
  });

  it('formats durations for people', () => {
    assert.equal(formatDuration(250), '250 ms');
    assert.equal(formatDuration(90_000), '1.5 min');
    assert.equal(formatDuration(86_400_000), '1 days');
  });
});

describe('task input', () => {
  it('accepts the original addNewTask fields and normalises keys', () => {
    const v = validateTaskInput(
      { method: 'GENERATE_CACHE', registryObjectKeys: ['a', 'b', 'a'], dataSourceKey: 'csiro', scheduledFor: '15 seconds', recurEvery: '1 hour' },
      NOW,
    );
    assert.deepEqual(v.registryObjectKeys, ['a', 'b']);
    assert.equal(v.scheduledAt, NOW + 15_000);
    assert.equal(v.recurMs, 3_600_000);
  });

  const bad: [string, unknown, RegExp][] = [
    ['not an object', 'GENERATE_CACHE', /task input must be a JSON object, got string/],
    ['an array', [], /got an array/],
    ['a lower-case method', { method: 'generate_cache' }, /method "generate_cache" is not a task method name/],
    ['a missing method', {}, /method undefined is not a task method name/],
    ['an unknown field', { method: 'X', delay: '1 hour' }, /unknown field "delay"; allowed: method, logMessage/],
    ['keys of the wrong type', { method: 'X', registryObjectKeys: [1, 2] }, /registryObjectKeys\[0\]: record key must be a string, got number/],
    ['a blank key', { method: 'X', registryObjectKeys: ['ok', ' '] }, /registryObjectKeys\[1\]: record key must not be empty/],
    ['10,001 keys', { method: 'X', registryObjectKeys: Array.from({ length: 10_001 }, (_, i) => `k${i}`) }, /10001 keys; at most 10000/],
    ['a 5 MB log message', { method: 'X', logMessage: 'x'.repeat(5_000_000) }, /logMessage is 5000000 characters long; at most 10000/],
    ['a numeric data source', { method: 'X', dataSourceKey: 7 }, /dataSourceKey must be a string, got number/],
    ['an own prerequisite', { method: 'X', prerequisiteTaskId: 'me' }, /task "me" cannot be its own prerequisite/],
    ['a recurrence too short', { method: 'X', recurEvery: '1 ms' }, /recurEvery "1 ms" must be from 50 milliseconds to 366 days/],
    ['a malformed delay', { method: 'X', scheduledFor: 'tomorrow' }, /scheduledFor "tomorrow" is not a duration/],
  ];
  for (const [what, input, message] of bad) {
    it(`refuses ${what}, naming the field`, () => assert.throws(() => validateTaskInput(input, NOW, 'me'), message));
  }

  it('accepts 10,000 keys and SQL metacharacters or unicode in keys (they only ever travel as parameters)', () => {
    const keys = Array.from({ length: 10_000 }, (_, i) => `k'${i}"; DROP TABLE x; -- ü ключ`);
    assert.equal(validateTaskInput({ method: 'X', registryObjectKeys: keys }, NOW).registryObjectKeys!.length, 10_000);
  });
});
