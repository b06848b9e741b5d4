/**
 * The cluster's frontend with TLS and JWT authorization (the server's default authorizer and claim
 * mapper, keys from the cluster's JWKS file): a worker process, `taskmgr` and the temporal CLI work
 * with a token from `taskmgr cluster-token` in TEMPORAL_API_KEY; a read-only token, a token signed
 * by another key and no token at all are refused, each with a message that says what to fix.
 * Runs under `npm run test:cluster`, on a secured cluster of its own.
 */
import assert from 'node:assert/strict';
import { execFile, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import os from 'node:os';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { SignJWT } from 'jose';
import { seedRegistry } from '../../src/registry/seed.ts';
import { startTestCluster, type TestCluster } from '../cluster-server.ts';
import { runTaskmgr, startTaskmgrWorker } from '../taskmgr-process.ts';
import { createTestDatabase, eventually, uniqueName, type TestDatabase } from '../helpers.ts';

const exec = promisify(execFile);

describe('a cluster whose frontend asks for TLS and a JWT', () => {
  let cluster: TestCluster;
  let db: TestDatabase;
  let env: Record<string, string>;
  let writer: string;
  const workers: ChildProcess[] = [];

  before(async () => {
    cluster = await startTestCluster(process.env.TEST_DATABASE_URL!, { secured: true });
    db = await createTestDatabase();
    await seedRegistry(db.pool, { records: 200, dataSources: 2, hubs: 1, hubSize: 20, seed: 41 });
    env = {
      PATH: process.env.PATH!,
      HOME: os.homedir(),
      LOG_LEVEL: 'warn',
      DATA_DIR: cluster.dir,
      DATABASE_URL: db.url,
      TEMPORAL_ADDRESS: cluster.address,
      TEMPORAL_TASK_QUEUE: uniqueName('registry-jwt'),
      TEMPORAL_TLS_SERVER_CA_CERT_PATH: cluster.auth!.caFile,
      TEMPORAL_TLS_SERVER_NAME: 'localhost',
    };
    writer = (await taskmgr(['cluster-token', '--subject', 'test-worker'])).out.trim();
  });
  after(async () => {
    for (const w of workers) w.kill('SIGKILL');
    await db?.drop();
    await cluster?.stop();
  });

  const taskmgr = (args: string[], extra: Record<string, string | undefined> = {}) => runTaskmgr(args, { ...env, ...extra });

  const temporal = async (args: string[], apiKey?: string) => {
    const cliEnv = { PATH: env.PATH!, HOME: env.HOME!, ...(apiKey ? { TEMPORAL_API_KEY: apiKey } : {}) };
    const tls = ['--address', cluster.address, '--tls-ca-path', cluster.auth!.caFile, '--tls-server-name', 'localhost'];
    try {
      const { stdout } = await exec(process.env.TEMPORAL_CLI!, [...args, ...tls], { env: cliEnv, timeout: 30_000 });
      return { code: 0, out: stdout };
    } catch (err) {
      const e = err as { code: number; stdout: string; stderr: string };
      return { code: e.code, out: `${e.stdout}${e.stderr}` };
    }
  };
  /** `taskmgr worker` with a token (or none) until it exits or the test ends. */
  const worker = (apiKey: string | undefined) => {
    const w = startTaskmgrWorker({ ...env, TEMPORAL_API_KEY: apiKey });
    workers.push(w.child);
    return w;
  };

  it('with a write token a worker, taskmgr and the temporal CLI work: a task completes, a deletion is followed up', async () => {
    assert.match(writer, /^[\w-]+\.[\w-]+\.[\w-]+$/, 'cluster-token prints a JWT');
    const w = worker(writer);
    try {
      const added = await taskmgr(['add', 'INDEX_RECORDS', '--json'], { TEMPORAL_API_KEY: writer });
      assert.equal(added.code, 0, added.out);
      const { taskId } = JSON.parse(added.stdout) as { taskId: string };
      await eventually(
        async () => JSON.parse((await taskmgr(['show', taskId, '--json'], { TEMPORAL_API_KEY: writer })).out).status === 'COMPLETED',
        60_000,
        500,
      );

      const key = (await db.pool.query<{ key: string }>("SELECT key FROM registry_objects WHERE key LIKE '%/hub-%' LIMIT 1")).rows[0]!.key;
      const deleted = await taskmgr(['delete-record', key, '--wait'], { TEMPORAL_API_KEY: writer });
      assert.equal(deleted.code, 0, deleted.out);
      assert.match(deleted.out, /follow-up of \d+ related records done in \d+ ms/);

      const listed = await temporal(['workflow', 'list', '--query', "TaskStatus='COMPLETED' AND TaskMethod='INDEX_RECORDS'", '--output', 'json'], writer);
      assert.equal(listed.code, 0, listed.out);
      assert.ok(
        (JSON.parse(listed.out) as { execution: { workflowId: string } }[]).some((e) => e.execution.workflowId === taskId),
        listed.out,
      );
    } finally {
      w.child.kill('SIGTERM');
      await w.exited;
    }
  });

  it('a read-only token reads but cannot add a task; the refusal names the token and its permission', async () => {
    const reader = (await taskmgr(['cluster-token', '--permission', 'default:read', '--subject', 'dashboard'])).out.trim();
    const listed = await taskmgr(['list', '--json'], { TEMPORAL_API_KEY: reader });
    assert.equal(listed.code, 0, listed.out);
    const before = (JSON.parse(listed.out) as unknown[]).length;
    const added = await taskmgr(['add', 'INDEX_RECORDS'], { TEMPORAL_API_KEY: reader });
    assert.equal(added.code, 1, added.out);
    assert.match(added.out, /^taskmgr: Temporal at 127\.0\.0\.1:\d+ refused .*TEMPORAL_API_KEY/m);
    assert.doesNotMatch(added.out, /\n\s+at /, 'no stack trace');
    const after = JSON.parse((await taskmgr(['list', '--json'], { TEMPORAL_API_KEY: reader })).out) as unknown[];
    assert.equal(after.length, before, 'nothing was added');
    const cli = await temporal(
      [
        'workflow',
        'start',
        '--type',
        'registryTask',
        '--task-queue',
        env.TEMPORAL_TASK_QUEUE!,
        '--workflow-id',
        'refused-start',
        '--input',
        '{"method":"INDEX_RECORDS"}',
      ],
      reader,
    );
    assert.notEqual(cli.code, 0);
    assert.match(cli.out, /PermissionDenied|unauthorized/i);
  });

  it('no token, or a token signed by another key, is refused with a message naming TEMPORAL_API_KEY', async () => {
    const forged = await new SignJWT({ permissions: ['default:admin', 'temporal-system:admin'] })
      .setProtectedHeader({ alg: 'RS256', kid: (await import('node:fs')).readFileSync(cluster.auth!.jwksFile, 'utf8').match(/"kid": "([^"]+)"/)![1]! })
      .setSubject('intruder')
      .setExpirationTime('1h')
      .sign(crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey);
    for (const [what, key] of [
      ['no token', undefined],
      ['a forged token', forged],
    ] as const) {
      const listed = await taskmgr(['list'], { TEMPORAL_API_KEY: key });
      assert.equal(listed.code, 1, `${what}: ${listed.out}`);
      assert.match(listed.out, /^taskmgr: Temporal at 127\.0\.0\.1:\d+ refused .*TEMPORAL_API_KEY/m, what);
      const cli = await temporal(['workflow', 'list', '--limit', '1'], key);
      assert.notEqual(cli.code, 0, `${what}: the temporal CLI is refused too`);
    }
  });

  it('a worker with no token or a read-only one stops by itself within a minute, naming TEMPORAL_API_KEY, instead of retrying', async () => {
    const reader = (await taskmgr(['cluster-token', '--permission', 'default:read'])).out.trim();
    for (const [what, key] of [
      ['no token', undefined],
      ['a read-only token', reader],
    ] as const) {
      const w = worker(key);
      const tooLong = setTimeout(() => w.child.kill('SIGKILL'), 60_000);
      const { code, output } = await w.exited;
      clearTimeout(tooLong);
      assert.equal(code, 1, `${what}: stopped by itself: ${output}`);
      assert.match(
        output,
        /^taskmgr: Temporal at 127\.0\.0\.1:\d+ refused the call \(PermissionDenied: Request unauthorized\.\): check that TEMPORAL_API_KEY/m,
        what,
      );
    }
  });

  it('cluster-token refuses a permission it cannot express and a lifetime out of range, naming the allowed values', async () => {
    const role = await taskmgr(['cluster-token', '--permission', 'default:owner']);
    assert.equal(role.code, 1);
    assert.match(role.out, /permission "default:owner" is not "<namespace>:<role>" with role one of read, write, admin/);
    const days = await taskmgr(['cluster-token', '--days', '0']);
    assert.notEqual(days.code, 0);
    assert.match(days.out, /--days must be a whole number from 1 to 400, got "0"/);
  });
});
