/**
 * `npm start` (`taskmgr start`) on a fresh data directory: it comes up with embedded PostgreSQL,
 * the dev server, a worker and the task manager page, every listener it opens is on loopback, the
 * page answers with the generated admin password, and Ctrl-C stops it all.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { freePort } from '../../src/dev/temporal-dev-server.ts';

const BIN = path.join(import.meta.dirname, '..', '..', 'bin', 'taskmgr.js');

/** Listening TCP sockets as "address:port" (IPv4 and IPv6), from /proc. */
function listeners(): Set<string> {
  const out = new Set<string>();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    if (!fs.existsSync(file)) continue;
    for (const line of fs.readFileSync(file, 'utf8').split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols[3] !== '0A') continue; // LISTEN
      const [hex, port] = cols[1]!.split(':');
      const addr =
        hex!.length === 8
          ? hex!
              .match(/../g)!
              .reverse()
              .map((b) => parseInt(b, 16))
              .join('.')
          : hex === '00000000000000000000000001000000'
            ? '::1'
            : hex === '00000000000000000000000000000000'
              ? '::'
              : `ipv6:${hex}`;
      out.add(`${addr}:${parseInt(port!, 16)}`);
    }
  }
  return out;
}

describe('npm start on a fresh machine', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'registry-taskmgr-start-'));
  fs.chmodSync(dir, 0o777); // as root, the embedded PostgreSQL runs as `postgres`
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('comes up on loopback only, serves the page, and stops on Ctrl-C', { timeout: 240_000 }, async () => {
    const ports = {
      EMBEDDED_PG_PORT: await freePort(),
      TEMPORAL_DEV_PORT: await freePort(),
      TEMPORAL_UI_PORT: await freePort(),
      HTTP_PORT: await freePort(),
      METRICS: await freePort(),
    };
    const before = listeners();
    const { METRICS: metricsPort, ...numbered } = ports;
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      DATA_DIR: path.join(dir, 'data'),
      SEED_RECORDS: '300',
      LOG_LEVEL: 'warn',
      METRICS_ADDRESS: `127.0.0.1:${metricsPort}`,
      ...Object.fromEntries(Object.entries(numbered).map(([k, v]) => [k, String(v)])),
    };
    delete env.DATABASE_URL;
    delete env.TEMPORAL_ADDRESS;
    const child = spawn(process.execPath, [BIN, 'start'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (b: Buffer) => (output += b.toString()));
    child.stderr.on('data', (b: Buffer) => (output += b.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      const deadline = Date.now() + 180_000;
      while (!output.includes('registry-taskmgr is running.')) {
        if (child.exitCode !== null || Date.now() > deadline) assert.fail(`npm start did not come up:\n${output}`);
        await new Promise((r) => setTimeout(r, 250));
      }
      assert.match(output, new RegExp(`Task manager: http://127\\.0\\.0\\.1:${ports.HTTP_PORT}/`));

      const opened = [...listeners()].filter((l) => !before.has(l));
      const ours = opened.filter((l) => Object.values(ports).some((p) => l.endsWith(`:${p}`)));
      assert.equal(new Set(ours.map((l) => l.split(':').pop())).size, 5, `the five listeners: ${opened.join(', ')}`);
      assert.match(output, new RegExp(`Metrics: +http://127\\.0\\.0\\.1:${metricsPort}/metrics`));
      const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
      assert.match(metrics, /^temporal_worker_task_slots_available\{/m, "the SDK's metrics");
      assert.match(metrics, /^registry_pg_pool_connections\{state="in_use"\}/m, 'ours');
      const exposed = opened.filter((l) => !l.startsWith('127.') && !l.startsWith('::1:'));
      assert.deepEqual(exposed, [], `listeners beyond loopback: ${exposed.join(', ')}`);

      const password = fs.readFileSync(path.join(dir, 'data', 'admin-password'), 'utf8').trim();
      assert.equal((fs.statSync(path.join(dir, 'data', 'admin-password')).mode & 0o777).toString(8), '600');
      const auth = `Basic ${Buffer.from(`admin:${password}`).toString('base64')}`;
      const res = await fetch(`http://127.0.0.1:${ports.HTTP_PORT}/api/data-sources`, { headers: { authorization: auth } });
      assert.equal(res.status, 200);
      assert.equal(((await res.json()) as unknown[]).length, 3);
      assert.ok(!output.includes(password), 'the generated password is not printed');
    } finally {
      child.kill('SIGINT');
    }
    assert.equal(await exited, 0, output.slice(-2000));
  });
});
