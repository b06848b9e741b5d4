/**
 * TLS served by Temporal itself: the Temporal server binary (built from its Go module, as a
 * cluster runs it) serves its frontend over TLS and demands client certificates. A worker process,
 * `taskmgr` and the temporal CLI all work through it with TEMPORAL_TLS_* set; a worker with a
 * wrong CA, server name or no client certificate stops at once with a message naming the setting,
 * instead of retrying as if the server were down.
 */
import assert from 'node:assert/strict';
import { execFile, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { seedRegistry } from '../../src/registry/seed.ts';
import { makeCertificates, type TestCertificates } from '../certs.ts';
import { runTaskmgr, startTaskmgrWorker } from '../taskmgr-process.ts';
import { createTestDatabase, eventually, uniqueName, type TestDatabase } from '../helpers.ts';
import { startTlsTemporalServer, type TlsTemporalServer } from '../tls-temporal-server.ts';

const exec = promisify(execFile);

function required(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run the tests with \`npm test\`, which finds or builds it`);
  return v;
}

describe('a Temporal server that serves mTLS itself', () => {
  let dir: string;
  let certs: TestCertificates;
  let other: TestCertificates;
  let server: TlsTemporalServer;
  let db: TestDatabase;
  let env: Record<string, string>;
  const workers: ChildProcess[] = [];

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'registry-taskmgr-tls-server-'));
    certs = makeCertificates(dir, 'cluster');
    other = makeCertificates(dir, 'stranger');
    server = await startTlsTemporalServer({ serverPath: required('TEMPORAL_SERVER'), cliPath: required('TEMPORAL_CLI'), certs, dir });
    db = await createTestDatabase();
    await seedRegistry(db.pool, { records: 300, dataSources: 2, hubs: 1, hubSize: 40, seed: 31 });
    env = {
      PATH: process.env.PATH!,
      HOME: os.homedir(),
      LOG_LEVEL: 'warn',
      DATABASE_URL: db.url,
      TEMPORAL_ADDRESS: server.address,
      TEMPORAL_TASK_QUEUE: uniqueName('registry-tasks-mtls'),
      TEMPORAL_TLS: 'true',
      TEMPORAL_TLS_SERVER_CA_CERT_PATH: certs.ca,
      TEMPORAL_TLS_SERVER_NAME: 'localhost',
      TEMPORAL_TLS_CLIENT_CERT_PATH: certs.clientCert,
      TEMPORAL_TLS_CLIENT_KEY_PATH: certs.clientKey,
    };
  });
  after(async () => {
    for (const w of workers) w.kill('SIGKILL');
    await server?.stop();
    await db?.drop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const taskmgr = (args: string[], extra: Record<string, string | undefined> = {}) => runTaskmgr(args, { ...env, ...extra });

  /** `taskmgr worker` until it exits or the test ends. */
  const worker = (extra: Record<string, string | undefined> = {}) => {
    const w = startTaskmgrWorker({ ...env, ...extra });
    workers.push(w.child);
    return w;
  };

  it('a worker, taskmgr and the temporal CLI work over mTLS: a task completes, a deletion is followed up', async () => {
    const w = worker();
    try {
      const added = await taskmgr(['add', 'INDEX_RECORDS', '--json']);
      assert.equal(added.code, 0, added.out);
      // stdout only: a worker still connecting when the task is added makes taskmgr warn on stderr that its admission is pending.
      const { taskId } = JSON.parse(added.stdout) as { taskId: string };
      await eventually(async () => JSON.parse((await taskmgr(['show', taskId, '--json'])).out).status === 'COMPLETED', 60_000, 500);

      const key = (await db.pool.query<{ key: string }>("SELECT ro.key FROM registry_objects ro WHERE ro.key LIKE '%/hub-%' LIMIT 1")).rows[0]!.key;
      const deleted = await taskmgr(['delete-record', key, '--wait']);
      assert.equal(deleted.code, 0, deleted.out);
      assert.match(deleted.out, /follow-up of \d+ related records done in \d+ ms/);

      // The search attributes work on this server as on the dev server.
      const { stdout } = await exec(
        required('TEMPORAL_CLI'),
        ['workflow', 'list', '--query', "TaskStatus='COMPLETED' AND TaskMethod='INDEX_RECORDS'", '--output', 'json', ...server.cliTlsArgs],
        { timeout: 30_000 },
      );
      assert.ok(
        (JSON.parse(stdout) as { execution: { workflowId: string } }[]).some((e) => e.execution.workflowId === taskId),
        stdout,
      );
    } finally {
      w.child.kill('SIGTERM');
      await w.exited;
    }
  });

  it('a worker with a CA it does not trust, a wrong server name or no client certificate stops within seconds, naming the setting', async () => {
    // [what, settings, message, whether a few retries may come first]
    const cases: [string, Record<string, string | undefined>, RegExp, boolean][] = [
      [
        'an untrusted server certificate',
        { TEMPORAL_TLS_SERVER_CA_CERT_PATH: other.ca },
        /TLS with Temporal at 127\.0\.0\.1:\d+ failed: the server's certificate is not signed by a CA we trust \(TEMPORAL_TLS_SERVER_CA_CERT_PATH\)/,
        false,
      ],
      [
        'a wrong server name',
        { TEMPORAL_TLS_SERVER_NAME: 'registry.example.org' },
        /the server's certificate is not valid for the name we expect \(TEMPORAL_TLS_SERVER_NAME\)/,
        false,
      ],
      [
        'no client certificate',
        { TEMPORAL_TLS_CLIENT_CERT_PATH: undefined, TEMPORAL_TLS_CLIENT_KEY_PATH: undefined },
        /the server requires a client certificate \(TEMPORAL_TLS_CLIENT_CERT_PATH/,
        true,
      ],
    ];
    for (const [what, extra, message, mayRetryFirst] of cases) {
      const w = worker(extra);
      const tooLong = setTimeout(() => w.child.kill('SIGKILL'), 60_000);
      const { code, output } = await w.exited;
      clearTimeout(tooLong);
      assert.equal(code, 1, `${what}: stopped by itself, within a minute: ${output}`);
      assert.match(output, message, what);
      assert.doesNotMatch(output, /\n\s+at /, `${what}: no stack trace`);
      // Under TLS 1.3 the server refuses a missing client certificate after the client's side of
      // the handshake is done; the first attempts may see only a broken pipe (an outage, so they
      // retry) before one reads the server's alert. The others fail on the client's own check.
      if (!mayRetryFirst) assert.doesNotMatch(output, /unreachable; retrying/, `${what}: no retry`);
    }
    // A client certificate from another CA: the server refuses it, and the client says where to look.
    const stranger = await taskmgr(['list'], { TEMPORAL_TLS_CLIENT_CERT_PATH: other.clientCert, TEMPORAL_TLS_CLIENT_KEY_PATH: other.clientKey });
    assert.notEqual(stranger.code, 0);
    assert.match(stranger.out, /^taskmgr: .*TEMPORAL_TLS_CLIENT_CERT_PATH/m);
  });
});
