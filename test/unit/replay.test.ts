/**
 * Determinism guard: every committed history (test/histories, recorded by
 * `npm run record-histories`) must replay against the current workflow code.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Worker } from '@temporalio/worker';
import { OpenTelemetryPlugin } from '@temporalio/interceptors-opentelemetry';
import { Resource } from '@opentelemetry/resources';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { workflowBundle } from '../helpers.ts';
import { WORKFLOWS_PATH } from '../../src/worker.ts';
import { QUIET_BUNDLER_LOGGER } from '../../src/workflow-bundle.ts';

const DIR = path.join(import.meta.dirname, '..', 'histories');
// Subfolders keep histories of earlier workflow versions (v1/: registryTask before its
// local-admin-activities-and-memo patch, deleteRecord and registryOperation before their
// coalesced-follow-up patch; v3/: registryTask before its first-look-before-local-activities
// patch; v4/: registryTask before its merge-wakes-wait patch; v5/: coalesceFollowUps before its
// coalescer-local-round patch; v6/: deleteRecord before its deletes-one-at-a-time patch, two
// concurrent deletes included; v7/: deleteRecord before its wake-coalescer-after-answer patch;
// v8/: deleteRecord and coalesceFollowUps before deletions were planned by their round, no patch:
// the local activity's recorded outcome, planned or not, decides the path; v9/: registryTask
// version 3, frozen in registryTask-v3.ts behind version 4's v4-one-step-admission patch; v10/:
// coalesceFollowUps before its coalescer-ignores-claimed-signals patch, a late signal's empty round
// included; v11/: deleteRecord before its deletion-one-patch patch and registryTask version 4
// before version 5's v5-fewer-visibility-writes): executions of every version must still replay.
const files = (fs.readdirSync(DIR, { recursive: true }) as string[]).filter((f) => f.endsWith('.json')).sort();

describe('workflow histories replay on the current code', () => {
  it('has recorded histories to replay', () => assert.ok(files.length >= 2));
  for (const file of files) {
    it(`replays ${file}`, async () => {
      const history = JSON.parse(fs.readFileSync(path.join(DIR, file), 'utf8'));
      await Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, history, file);
    });
  }
});

// A worker with tracing on (OTEL_EXPORTER_OTLP_ENDPOINT) runs the same workflows with
// OpenTelemetry's workflow interceptors: they add headers and spans, and must not change what
// the workflows command, so the same histories replay with them installed.
describe('workflow histories replay with the OpenTelemetry interceptors installed', () => {
  it('replays every committed history', { timeout: 120_000 }, async () => {
    const plugin = new OpenTelemetryPlugin({
      resource: new Resource({ 'service.name': 'replay-test' }),
      spanProcessor: new SimpleSpanProcessor(new InMemorySpanExporter()),
    });
    const histories = files.map((file) => ({ workflowId: file, history: JSON.parse(fs.readFileSync(path.join(DIR, file), 'utf8')) }));
    const results = [];
    for await (const r of Worker.runReplayHistories(
      { workflowsPath: WORKFLOWS_PATH, plugins: [plugin], bundlerOptions: { logger: QUIET_BUNDLER_LOGGER } } as never,
      histories,
    ))
      results.push(r);
    const failed = results.filter((r) => r.error).map((r) => `${r.workflowId}: ${r.error?.message}`);
    assert.deepEqual(failed, []);
    assert.equal(results.length, files.length);
  });
});
