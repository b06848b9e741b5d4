import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig, redactSecrets, tracingSettings } from '../../src/config.ts';
import { sweepIntervalMs } from '../../src/client/coalescer-wake.ts';

describe('configuration', () => {
  it('has defaults for a fresh machine: dev server on loopback, task queue registry-tasks', () => {
    const c = loadConfig({});
    assert.equal(c.temporal.address, undefined);
    assert.equal(c.temporal.taskQueue, 'registry-tasks');
    assert.equal(c.temporal.devPort, 7233);
    assert.equal(c.databaseUrl, undefined);
    assert.equal(c.followUp.batchSize, 500);
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
    assert.throws(
      () => loadConfig({ METRICS_ADDRESS: 'http://x:1/metrics' }),
      /METRICS_ADDRESS="http:\/\/x:1\/metrics".*expected host:port \(e\.g\. 127\.0\.0\.1:9464\) or off/,
    );
    assert.equal(loadConfig({ METRICS_SAMPLE_EVERY: '2 seconds' }).metricsSampleMs, 2000);
  });

  it('traces only when OTEL_EXPORTER_OTLP_ENDPOINT names an http(s) collector; a bad one is refused by name and turns tracing off at start', () => {
    assert.deepEqual(loadConfig({}).tracing, { otlpEndpoint: undefined, serviceName: undefined });
    assert.deepEqual(loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318', OTEL_SERVICE_NAME: 'registry-worker-2' }).tracing, {
      otlpEndpoint: 'http://127.0.0.1:4318',
      serviceName: 'registry-worker-2',
    });
    assert.throws(
      () => loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'grpc://collector:4317' }),
      /OTEL_EXPORTER_OTLP_ENDPOINT="grpc:\/\/collector:4317".*expected an http:\/\/ or https:\/\/ URL/,
    );
    assert.deepEqual(tracingSettings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'grpc://collector:4317' }), {});
    assert.deepEqual(tracingSettings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'https://otel.example.org/' }), {
      otlpEndpoint: 'https://otel.example.org/',
      serviceName: undefined,
    });
    assert.throws(() => loadConfig({ PROMETHEUS_URL: 'prometheus:9090' }), /PROMETHEUS_URL="prometheus:9090"/);
  });

  it('wakes coalescers of follow-ups stranded for 2 minutes by default; the limit is a duration from 1 second to 1 day', () => {
    assert.equal(loadConfig({}).followUp.strandedAfterMs, 120_000);
    assert.equal(loadConfig({ FOLLOWUP_STRANDED_AFTER: '5 seconds' }).followUp.strandedAfterMs, 5000);
    assert.throws(() => loadConfig({ FOLLOWUP_STRANDED_AFTER: '10 milliseconds' }), /FOLLOWUP_STRANDED_AFTER="10 milliseconds".*between 1 second and 1 day/);
    assert.throws(() => loadConfig({ FOLLOWUP_STRANDED_AFTER: '2 days' }), /FOLLOWUP_STRANDED_AFTER="2 days".*between 1 second and 1 day/);
    assert.throws(() => loadConfig({ FOLLOWUP_STRANDED_AFTER: 'soon' }), /FOLLOWUP_STRANDED_AFTER="soon".*expected/);
    assert.equal(sweepIntervalMs(120_000), 30_000, 'every 30 s at most');
    assert.equal(sweepIntervalMs(2000), 500, 'a quarter of a shorter limit');
  });

  it('treats empty variables as unset', () => {
    assert.equal(loadConfig({ DATABASE_URL: '', TEMPORAL_ADDRESS: '' }).databaseUrl, undefined);
  });

  it('names the variable, the bad value and what is allowed', () => {
    assert.throws(
      () => loadConfig({ LOG_LEVEL: 'loud' }),
      (err: Error) => {
        assert.ok(err instanceof ConfigError);
        assert.match(err.message, /LOG_LEVEL="loud"/);
        assert.match(err.message, /allowed: fatal, error, warn, info, debug, trace, silent/);
        return true;
      },
    );
    assert.throws(() => loadConfig({ TEMPORAL_DEV_PORT: '70000' }), /TEMPORAL_DEV_PORT="70000": must be at most 65535/);
    assert.throws(() => loadConfig({ FOLLOWUP_BATCH_SIZE: 'many' }), /FOLLOWUP_BATCH_SIZE="many"/);
    assert.throws(() => loadConfig({ DATABASE_URL: 'not a url' }), /DATABASE_URL="not a url"/);
  });
});
