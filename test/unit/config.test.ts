import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig, redactSecrets } from '../../src/config.ts';

describe('configuration', () => {
  it('has defaults for a fresh machine: dev server on loopback, task queue registry-tasks', () => {
    const c = loadConfig({});
    assert.equal(c.temporal.address, undefined);
    assert.equal(c.temporal.taskQueue, 'registry-tasks');
    assert.equal(c.temporal.devPort, 7233);
    assert.equal(c.databaseUrl, undefined);
    assert.equal(c.followUp.batchSize, 5000);
  });

  it('never echoes a password: a bad DATABASE_URL is shown with its password replaced', () => {
    assert.throws(
      () => loadConfig({ DATABASE_URL: 'postgres://registry:s3cr%40t-pw@db.example.org:99999/registry' }),
      (err: Error) => err.message.includes('postgres://registry:***@db.example.org') && !err.message.includes('s3cr'),
    );
    assert.equal(redactSecrets('a postgres://u:p@h/db and http://x:y@z'), 'a postgres://u:***@h/db and http://x:***@z');
  });

  it('serves worker metrics on loopback by default; off turns them off; a bad address names the forms', () => {
    assert.equal(loadConfig({}).metricsAddress, '127.0.0.1:9464');
    assert.equal(loadConfig({ METRICS_ADDRESS: 'off' }).metricsAddress, undefined);
    assert.equal(loadConfig({ METRICS_ADDRESS: '[::1]:9500' }).metricsAddress, '[::1]:9500');
    assert.throws(() => loadConfig({ METRICS_ADDRESS: 'http://x:1/metrics' }), /METRICS_ADDRESS="http:\/\/x:1\/metrics".*expected host:port \(e\.g\. 127\.0\.0\.1:9464\) or off/);
    assert.equal(loadConfig({ METRICS_SAMPLE_EVERY: '2 seconds' }).metricsSampleMs, 2000);
  });

  it('treats empty variables as unset', () => {
    assert.equal(loadConfig({ DATABASE_URL: '', TEMPORAL_ADDRESS: '' }).databaseUrl, undefined);
  });

  it('names the variable, the bad value and what is allowed', () => {
    assert.throws(() => loadConfig({ LOG_LEVEL: 'loud' }), (err: Error) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, /LOG_LEVEL="loud"/);
      assert.match(err.message, /allowed: fatal, error, warn, info, debug, trace, silent/);
      return true;
    });
    assert.throws(() => loadConfig({ TEMPORAL_DEV_PORT: '70000' }), /TEMPORAL_DEV_PORT="70000": must be at most 65535/);
    assert.throws(() => loadConfig({ FOLLOWUP_BATCH_SIZE: 'many' }), /FOLLOWUP_BATCH_SIZE="many"/);
    assert.throws(() => loadConfig({ DATABASE_URL: 'not a url' }), /DATABASE_URL="not a url"/);
  });
});
