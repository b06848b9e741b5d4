/** The real servers tests run against; shared by `npm test` and scripts/record-histories.ts. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { findTemporalCli } from '../src/dev/temporal-cli.ts';
import { findTemporalServer } from '../src/dev/temporal-server.ts';
import { freePort, startDevServer } from '../src/dev/temporal-dev-server.ts';
import { startEmbeddedPostgres } from '../src/dev/embedded-postgres.ts';
import { startTestCluster } from './cluster-server.ts';

const LOCAL_PG = 'postgres://postgres@127.0.0.1:5432/postgres';

async function answers(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

export interface TestServers {
  cliPath: string;
  /** The Temporal server binary, for the test of TLS served by Temporal itself. */
  serverPath: string;
  temporalAddress: string;
  /** Temporal's HTTP API (plain JSON). */
  temporalHttpUrl: string;
  /** 'dev' (the CLI's dev server) or 'cluster' (TEST_CLUSTER=1: separate processes on PostgreSQL, default dynamic config). */
  temporalKind: 'dev' | 'cluster';
  /** An admin URL: tests create and drop their own databases through it. */
  databaseUrl: string;
  stop(): Promise<void>;
}

/** TEST_DATABASE_URL, else the local server at 127.0.0.1:5432 if it answers, else an embedded one. */
async function testDatabaseUrl(cleanups: (() => Promise<void>)[]): Promise<string> {
  if (process.env.TEST_DATABASE_URL) return process.env.TEST_DATABASE_URL;
  if (await answers(LOCAL_PG)) return LOCAL_PG;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'registry-taskmgr-test-pg-'));
  fs.chmodSync(dir, 0o777); // as root, PostgreSQL runs as `postgres`, which must reach the data dir
  const db = await startEmbeddedPostgres({ dir: path.join(dir, 'data'), port: await freePort() });
  cleanups.push(async () => {
    await db.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return db.url;
}

export async function startTestServers(): Promise<TestServers> {
  const cleanups: (() => Promise<void>)[] = [];
  const stop = async () => {
    for (const c of cleanups.reverse()) await c().catch((e: Error) => console.error(`cleanup: ${e.message}`));
  };
  try {
    const cliPath = await findTemporalCli();
    const serverPath = findTemporalServer();
    const databaseUrl = await testDatabaseUrl(cleanups);
    const cluster = process.env.TEST_CLUSTER === '1';
    // On the dev server the tests lift two limits: runs of one workflow id are spaced at least 1 s
    // apart and timers fire at ~1 s (guards against tight loops); the soaks run thousands of
    // recurrences. The cluster keeps every default.
    const server = cluster
      ? await startTestCluster(databaseUrl)
      : await startDevServer({
          cliPath,
          port: 0,
          dynamicConfig: { 'history.workflowIdReuseMinimalInterval': '0s', 'history.timerProcessorMaxTimeShift': '10ms' },
        });
    cleanups.push(() => server.stop());
    return {
      cliPath,
      serverPath,
      temporalAddress: server.address,
      temporalHttpUrl: server.httpUrl,
      temporalKind: cluster ? 'cluster' : 'dev',
      databaseUrl,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
