/**
 * Traces, as an operator collects them: `taskmgr serve` and `taskmgr worker` processes with
 * OTEL_EXPORTER_OTLP_ENDPOINT set export to a real OpenTelemetry Collector (built from its Go
 * modules, tools/otelcol), which forwards them over OTLP/HTTP (JSON) to a receiver in this test
 * that keeps them for the assertions. One deletion through the HTTP API makes one connected
 * trace: the request -> the deleteRecord workflow -> its activities -> the coalesced round's
 * batch -> that batch's SQL. Log lines written inside the request carry its trace id.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { freePort } from '../../src/dev/temporal-dev-server.ts';
import { findGoTool, OTELCOL } from '../../src/dev/go-tools.ts';
import { seedRegistry, type SeedSummary } from '../../src/registry/seed.ts';
import { createTestDatabase, eventually, temporalAddress, uniqueName, type TestDatabase } from '../helpers.ts';
import { startTaskmgr, type TaskmgrProcess } from '../taskmgr-process.ts';

interface ReceivedSpan {
  service: string;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: Record<string, unknown>;
}

type OtlpValue = { stringValue?: string; intValue?: string | number; boolValue?: boolean; doubleValue?: number };
type OtlpAttribute = { key: string; value: OtlpValue };

const valueOf = (v: OtlpValue) => v.stringValue ?? v.intValue ?? v.boolValue ?? v.doubleValue;
const attributesOf = (list: OtlpAttribute[] = []) => Object.fromEntries(list.map((a) => [a.key, valueOf(a.value)]));

/** An OTLP/HTTP (JSON) trace receiver: POST /v1/traces, spans kept in `spans`. */
async function startOtlpReceiver(): Promise<{ url: string; spans: ReceivedSpan[]; close(): Promise<void> }> {
  const spans: ReceivedSpan[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/v1/traces' || !String(req.headers['content-type']).includes('json')) {
        res.writeHead(415).end();
        return;
      }
      for (const rs of JSON.parse(body).resourceSpans ?? []) {
        const service = String(attributesOf(rs.resource?.attributes)['service.name']);
        for (const ss of rs.scopeSpans ?? []) {
          for (const s of ss.spans ?? []) {
            spans.push({
              service,
              traceId: s.traceId,
              spanId: s.spanId,
              parentSpanId: s.parentSpanId || undefined,
              name: s.name,
              kind: s.kind,
              attributes: attributesOf(s.attributes),
            });
          }
        }
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  const port = await freePort();
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${port}`, spans, close: () => new Promise((r) => server.close(() => r())) };
}

/** The collector: OTLP/HTTP in on `port`, out to `forwardTo` as OTLP/HTTP JSON; no telemetry of its own. */
async function startCollector(port: number, forwardTo: string): Promise<{ child: ChildProcess; output: () => string }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'otelcol-'));
  const config = path.join(dir, 'config.yaml');
  fs.writeFileSync(
    config,
    [
      'receivers:',
      '  otlp:',
      '    protocols:',
      '      http:',
      `        endpoint: 127.0.0.1:${port}`,
      'exporters:',
      '  otlphttp:',
      `    endpoint: ${forwardTo}`,
      '    encoding: json',
      '    compression: none',
      'service:',
      '  telemetry:',
      '    metrics:',
      '      level: none',
      '  pipelines:',
      '    traces:',
      '      receivers: [otlp]',
      '      exporters: [otlphttp]',
      '',
    ].join('\n'),
  );
  const child = spawn(findGoTool(OTELCOL), ['--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
  // Up when its receiver answers (an empty export is accepted).
  const probe = () =>
    fetch(`http://127.0.0.1:${port}/v1/traces`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
      signal: AbortSignal.timeout(2000),
    });
  await eventually(
    async () => {
      if (child.exitCode !== null) throw new Error(`exited (${child.exitCode})`);
      return probe().then(
        (r) => r.ok,
        () => false,
      );
    },
    30_000,
    200,
  ).catch((err: Error) => {
    child.kill('SIGKILL');
    throw new Error(`the collector did not start: ${err.message}\n${output}`);
  });
  return { child, output: () => output };
}

describe('tracing', () => {
  let db: TestDatabase;
  let seeded: SeedSummary;
  let receiver: Awaited<ReturnType<typeof startOtlpReceiver>>;
  let collector: Awaited<ReturnType<typeof startCollector>>;
  let worker: TaskmgrProcess;
  let page: TaskmgrProcess;
  let pageUrl: string;
  const password = 'tracing-test-password';

  before(async () => {
    db = await createTestDatabase();
    seeded = await seedRegistry(db.pool, { records: 200, dataSources: 1, hubs: 1, hubSize: 20, seed: 77 });
    receiver = await startOtlpReceiver();
    // A free port may be taken by another test before the collector binds it: then another one.
    let collectorPort = 0;
    for (let attempt = 1; !collector; attempt++) {
      collectorPort = await freePort();
      collector = await startCollector(collectorPort, receiver.url).catch((err: Error) => {
        if (attempt === 3) throw err;
        return undefined as never;
      });
    }
    const env = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      DATABASE_URL: db.url,
      TEMPORAL_ADDRESS: temporalAddress(),
      TEMPORAL_TASK_QUEUE: uniqueName('registry-tracing'),
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${collectorPort}`,
      OTEL_BSP_SCHEDULE_DELAY: '200',
      FOLLOWUP_QUIET: '50 milliseconds',
    };
    worker = startTaskmgr('worker', { ...env, METRICS_ADDRESS: 'off', LOG_LEVEL: 'warn' });
    // Port 0: the server takes a free port itself and logs its address (no race with other tests for one).
    page = startTaskmgr('serve', { ...env, HTTP_PORT: '0', ADMIN_PASSWORD: password, LOG_LEVEL: 'debug' });
    pageUrl = await eventually(
      async () => {
        if (page.child.exitCode !== null) throw new Error(`taskmgr serve exited: ${page.output()}`);
        return /"url":"(http:\/\/[^"]+)","msg":"Background Task Manager listening"/.exec(page.output())?.[1];
      },
      60_000,
      100,
    );
  });
  after(async () => {
    for (const p of [worker, page]) p?.child.kill('SIGTERM');
    await Promise.all([worker?.exited, page?.exited]);
    collector?.child.kill('SIGTERM');
    await receiver?.close();
    await db?.drop();
  });

  it('one deletion through the HTTP API is one connected trace, from the request to the follow-up SQL', { timeout: 120_000 }, async () => {
    const hub = seeded.hubs[0]!;
    const auth = `Basic ${Buffer.from(`admin:${password}`).toString('base64')}`;
    const res = await fetch(`${pageUrl}/api/records/${encodeURIComponent(hub.key)}`, {
      method: 'DELETE',
      headers: { authorization: auth, 'x-requested-with': 'fetch' },
    });
    assert.ok(res.status < 300, `deletion answered ${res.status}: ${await res.text()}`);

    const request = await eventually(
      async () =>
        receiver.spans.find(
          (s) =>
            s.service === 'registry-taskmgr-serve' && s.kind === 2 && /DELETE/.test(String(s.attributes['http.method'] ?? s.attributes['http.request.method'])),
        ),
      30_000,
    );
    const inTrace = () => receiver.spans.filter((s) => s.traceId === request.traceId);
    // The trace is complete once the round's batch and its SQL have arrived.
    const batch = await eventually(async () => inTrace().find((s) => s.name === 'follow-up batch' && s.service === 'registry-taskmgr-worker'), 60_000);
    const trace = await eventually(async () => {
      const spans = inTrace();
      return spans.some((s) => s.name.startsWith('pg.query') && descendsFrom(spans, s, batch.spanId)) ? spans : undefined;
    }, 30_000);

    const names = trace.map((s) => s.name);
    for (const expected of ['UpdateWithStartWorkflow:deleteRecord', 'RunWorkflow:deleteRecord', 'RunActivity:deleteRecordAndQueue', 'follow-up batch'])
      assert.ok(names.includes(expected), `${expected} missing from ${names.join(', ')}`);
    assert.deepEqual(new Set(trace.map((s) => s.service)), new Set(['registry-taskmgr-serve', 'registry-taskmgr-worker']));
    // Connected: one root (the request), every other span's parent is in the trace.
    const ids = new Set(trace.map((s) => s.spanId));
    const roots = trace.filter((s) => !s.parentSpanId || !ids.has(s.parentSpanId));
    assert.deepEqual(
      roots.map((s) => s.spanId),
      [request.spanId],
      `roots: ${roots.map((s) => s.name).join(', ')}`,
    );
    // The batch's SQL: the statements that refreshed the records' derived state.
    const sql = trace.filter((s) => s.name.startsWith('pg.query') && descendsFrom(trace, s, batch.spanId)).map((s) => String(s.attributes['db.statement']));
    assert.ok(
      sql.some((q) => /record_index/.test(q)),
      `the batch's SQL: ${sql.join(' | ')}`,
    );

    // Log lines inside the request carry its trace id.
    assert.match(page.output(), new RegExp(`"trace_id":"${request.traceId}"`));
  });
});

/** Whether `span` has the span `ancestorId` above it. */
function descendsFrom(spans: ReceivedSpan[], span: ReceivedSpan, ancestorId: string): boolean {
  const byId = new Map(spans.map((s) => [s.spanId, s]));
  for (let p = span.parentSpanId; p; p = byId.get(p)?.parentSpanId) if (p === ancestorId) return true;
  return false;
}
