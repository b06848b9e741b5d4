/**
 * `taskmgr cluster` itself (`npm run cluster`), as a new user runs it: from an empty DATA_DIR it
 * starts embedded PostgreSQL, the Temporal processes, the Web UI, two workers and the page; a task
 * added with a token from `taskmgr cluster-token` completes; Ctrl-C (SIGINT) stops everything and
 * frees the ports; a second start on the same data still has the task. Runs under
 * `npm run test:cluster`. The internal ports are the fixed ones of src/cluster/layout.ts.
 */
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { freePort } from '../../src/dev/temporal-dev-server.ts';
import { DEFAULT_PORTS } from '../../src/cluster/layout.ts';
import { eventually } from '../helpers.ts';

const exec = promisify(execFile);
const BIN = path.join(import.meta.dirname, '..', '..', 'bin', 'taskmgr.js');

describe('taskmgr cluster', () => {
  let dataDir: string;
  let env: Record<string, string>;
  let running: { child: ChildProcess; output: () => string; exited: Promise<number | null> } | undefined;

  before(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'registry-taskmgr-cluster-cmd-'));
    // As root the embedded PostgreSQL runs as `postgres`, which must be able to enter the folder.
    fs.chmodSync(dataDir, 0o711);
    // Worker i serves its metrics on the base port + i - 1: a base whose next port is free too,
    // and no other port of this cluster inside that run.
    const isFree = (p: number) =>
      new Promise<boolean>((resolve) => {
        const srv = net.createServer().once('error', () => resolve(false));
        srv.listen(p, '127.0.0.1', () => srv.close(() => resolve(true)));
      });
    let metricsBase = 0;
    while (!metricsBase) {
      const p = await freePort('127.0.0.1', { from: 20_000, to: 32_000 });
      if (await isFree(p + 1)) metricsBase = p;
    }
    const port = async (): Promise<number> => {
      const p = await freePort('127.0.0.1', { from: 20_000, to: 32_000 });
      return p === metricsBase || p === metricsBase + 1 ? port() : p;
    };
    env = {
      PATH: process.env.PATH!,
      HOME: os.homedir(),
      LOG_LEVEL: 'info',
      DATA_DIR: dataDir,
      SEED_RECORDS: '300',
      TEMPORAL_DEV_PORT: String(await port()),
      TEMPORAL_HTTP_PORT: String(await port()),
      TEMPORAL_UI_PORT: String(await port()),
      HTTP_PORT: String(await port()),
      EMBEDDED_PG_PORT: String(await port()),
      METRICS_ADDRESS: `127.0.0.1:${metricsBase}`,
    };
  });
  after(async () => {
    if (running) {
      running.child.kill('SIGINT');
      await running.exited;
    }
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  /** Starts `taskmgr cluster --workers 2`; resolves once it prints its banner. */
  const start = async () => {
    const child = spawn(process.execPath, [BIN, 'cluster', '--workers', '2'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    running = { child, output: () => out, exited };
    await eventually(
      async () => {
        if (child.exitCode !== null) throw new Error(`taskmgr cluster exited:\n${out}`);
        return out.includes('Ctrl-C stops everything');
      },
      240_000,
      500,
    );
    return running;
  };
  const taskmgr = async (args: string[], extra: Record<string, string> = {}) => {
    const clientEnv = {
      ...env,
      TEMPORAL_ADDRESS: `127.0.0.1:${env.TEMPORAL_DEV_PORT}`,
      TEMPORAL_TLS_SERVER_CA_CERT_PATH: path.join(dataDir, 'cluster', 'auth', 'ca.pem'),
      TEMPORAL_TLS_SERVER_NAME: 'localhost',
      LOG_LEVEL: 'warn',
      ...extra,
    };
    const { stdout } = await exec(process.execPath, [BIN, ...args], { env: clientEnv, timeout: 60_000 });
    return stdout;
  };
  const stop = async () => {
    running!.child.kill('SIGINT');
    const code = await running!.exited;
    const out = running!.output();
    running = undefined;
    return { code, out };
  };
  const listening = (port: number) =>
    new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
    });

  it(
    'comes up from an empty DATA_DIR, runs a task with a minted token, stops in order on Ctrl-C, and keeps the data for the next start',
    { timeout: 10 * 60_000 },
    async () => {
      const first = await start();
      assert.match(first.output(), /Temporal: +127\.0\.0\.1:\d+ \(frontend, TLS \+ JWT/);
      assert.match(first.output(), /Workers: +2 processes/);
      const health = await fetch(`http://127.0.0.1:${env.HTTP_PORT}/api/health`);
      assert.equal(health.status, 200);
      assert.equal((await fetch(`http://127.0.0.1:${env.TEMPORAL_UI_PORT}/`)).status, 200, 'the Web UI answers');
      const metricsPort = Number(env.METRICS_ADDRESS!.split(':')[1]);
      // Each worker polls (and says so on its own endpoint) once its workflow bundle is built.
      for (const p of [metricsPort, metricsPort + 1]) {
        await eventually(async () => /^temporal_num_pollers\{/m.test(await (await fetch(`http://127.0.0.1:${p}/metrics`)).text()), 60_000, 500);
      }

      const token = (await taskmgr(['cluster-token'])).trim();
      const { taskId } = JSON.parse(await taskmgr(['add', 'INDEX_RECORDS', '--json'], { TEMPORAL_API_KEY: token })) as { taskId: string };
      await eventually(async () => JSON.parse(await taskmgr(['show', taskId, '--json'], { TEMPORAL_API_KEY: token })).status === 'COMPLETED', 90_000, 500);

      const { code, out } = await stop();
      assert.equal(code, 0, out);
      assert.doesNotMatch(out, /a cluster process exited/, 'no process died while it ran (two workers migrating one new database, say)');
      for (const port of [
        Number(env.TEMPORAL_DEV_PORT),
        Number(env.HTTP_PORT),
        Number(env.TEMPORAL_UI_PORT),
        Number(env.EMBEDDED_PG_PORT),
        DEFAULT_PORTS.internal.history1[0],
        DEFAULT_PORTS.internal.internalFrontend[0],
      ]) {
        assert.equal(await listening(port), false, `port ${port} is free again`);
      }

      await start();
      const again = JSON.parse(await taskmgr(['show', taskId, '--json'], { TEMPORAL_API_KEY: (await taskmgr(['cluster-token'])).trim() }));
      assert.equal(again.status, 'COMPLETED', 'the task survived the restart');
      const second = await stop();
      assert.equal(second.code, 0, second.out);
    },
  );
});
