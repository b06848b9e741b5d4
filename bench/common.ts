/** What the benchmarks share: figures, a worker pool, memory and CPU sampling, the database, the worker process. */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { withTransaction, type Pool, type PoolClient } from '../src/db/pool.ts';
import { startEmbeddedPostgres } from '../src/dev/embedded-postgres.ts';
import { findTemporalCli } from '../src/dev/temporal-cli.ts';
import { startDevServer, type DevServer } from '../src/dev/temporal-dev-server.ts';
import { recheckQuality, regenerateCache, reindexRecords } from '../src/registry/derived.ts';
import { deleteRecordRows, relatedTo } from '../src/registry/operations.ts';

export const ms = (t0: number) => performance.now() - t0;
export const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
};
export const r1 = (x: number) => Math.round(x * 10) / 10;
export const r2 = (x: number) => Math.round(x * 100) / 100;
export async function inPool<T, R>(items: T[], limit: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!);
      }
    }),
  );
  return out;
}

/** Peak resident memory of a process while `fn` runs (sampled every 100 ms from /proc). */
export async function peakRss<T>(pids: Record<string, number | undefined>, fn: () => Promise<T>): Promise<{ result: T; peakMb: Record<string, number> }> {
  const peak: Record<string, number> = {};
  const sample = () => {
    for (const [name, pid] of Object.entries(pids)) {
      if (!pid) continue;
      try {
        const kb = Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
        peak[name] = Math.max(peak[name] ?? 0, Math.round(kb / 1024));
      } catch {
        // exited
      }
    }
  };
  const timer = setInterval(sample, 100);
  sample();
  try {
    const result = await fn();
    sample();
    return { result, peakMb: peak };
  } finally {
    clearInterval(timer);
  }
}

/** Records whose derived state differs from a full recomputation, over one data source prefix (0: all right). */
export async function staleRecords(pool: Pool, dsPrefix: string): Promise<number> {
  const ids = (
    await pool.query<{ id: number }>('SELECT ro.id FROM registry_objects ro JOIN data_sources d ON d.id = ro.data_source_id WHERE d.key LIKE $1', [
      `${dsPrefix}%`,
    ])
  ).rows.map((r) => Number(r.id));
  // Recompute in a transaction that is rolled back: look, do not touch.
  const tx = await pool.connect();
  try {
    await tx.query('BEGIN');
    return (await recheckQuality(tx, ids)).changed + (await reindexRecords(tx, ids)).changed + (await regenerateCache(tx, ids)).changed;
  } finally {
    await tx.query('ROLLBACK');
    tx.release();
  }
}

/** A database of its own for one bench run, on BENCH_DATABASE_URL's server (else 127.0.0.1:5432, else an embedded one); `adminUrl` is that server's superuser URL. */
export async function database(): Promise<{ url: string; adminUrl: string; stop(): Promise<void> }> {
  const admin = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const name = `bench_${Date.now()}`;
  let adminUrl = admin;
  let embedded: Awaited<ReturnType<typeof startEmbeddedPostgres>> | undefined;
  const probe = new pg.Client({ connectionString: admin, connectionTimeoutMillis: 3000 });
  try {
    await probe.connect();
  } catch {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'registry-taskmgr-bench-pg-'));
    fs.chmodSync(dir, 0o777);
    embedded = await startEmbeddedPostgres({ dir: path.join(dir, 'data'), port: 5499 });
    adminUrl = embedded.url;
  } finally {
    await probe.end().catch(() => undefined);
  }
  const c = new pg.Client({ connectionString: adminUrl });
  await c.connect();
  await c.query(`CREATE DATABASE ${name}`);
  await c.end();
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    adminUrl,
    async stop() {
      const d = new pg.Client({ connectionString: adminUrl });
      await d.connect();
      await d.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await d.end();
      await embedded?.stop();
    },
  };
}

/** The dev server every benchmark runs, started like the tests' one: runs of one id may follow at once, timers fire precisely. */
export async function startBenchDevServer(): Promise<DevServer> {
  return startDevServer({
    cliPath: await findTemporalCli(),
    port: 0,
    dynamicConfig: { 'history.workflowIdReuseMinimalInterval': '0s', 'history.timerProcessorMaxTimeShift': '10ms' },
  });
}

export interface BenchWorkers {
  /** The registry's worker, as `taskmgr worker` runs it (its memory is goal 5's figure). */
  registry: ChildProcess;
  /** The baseline workflows' worker, in a process of its own so that it does not count as ours. */
  baselines: ChildProcess;
  stop(): void;
}

/** The bench worker processes (bench/worker.ts) on a server and database: registry work on `taskQueue`, baselines on `benchQueue`. */
export async function startRegistryBenchWorker(address: string, databaseUrl: string, taskQueue: string, benchQueue: string): Promise<BenchWorkers> {
  const env = { TEMPORAL_ADDRESS: address, DATABASE_URL: databaseUrl, TEMPORAL_TASK_QUEUE: taskQueue, BENCH_TASK_QUEUE: benchQueue, LOG_LEVEL: 'warn' };
  const [registry, baselines] = await Promise.all([
    startWorker({ ...env, BENCH_WORKER_ROLE: 'registry' }, (process.env.BENCH_WORKER_NODE_FLAGS ?? '').split(' ').filter(Boolean)),
    startWorker({ ...env, BENCH_WORKER_ROLE: 'baselines' }),
  ]);
  return { registry, baselines, stop: () => [registry, baselines].forEach((w) => w.kill('SIGTERM')) };
}

/** A bench worker process; `nodeFlags` (V8's heap sizes, say: BENCH_WORKER_NODE_FLAGS for the registry's) go to node. */
export function startWorker(env: Record<string, string>, nodeFlags: string[] = []): Promise<ChildProcess> {
  const child = spawn(process.execPath, [...nodeFlags, '--import', 'tsx', path.join(import.meta.dirname, 'worker.ts')], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  return new Promise((resolve, reject) => {
    const onData = (b: Buffer) => {
      out += b.toString();
      if (out.includes('worker ready')) resolve(child);
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`bench worker exited (${code}):\n${out}`)));
  });
}

/** Clock ticks per second of /proc's CPU times (USER_HZ: 100 on Linux). */
const CLOCK_TICKS = 100;

/** CPU seconds (user + system) a process has used so far, from /proc; 0 once it has exited. */
function cpuSecondsOf(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // After "pid (comm) ": state is field 3, utime 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return 0;
  }
}

/** The pids of every PostgreSQL process on this machine (the server and its backends). */
export function postgresPids(): number[] {
  return fs
    .readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .map(Number)
    .filter((pid) => {
      try {
        return fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'postgres';
      } catch {
        return false;
      }
    });
}

/**
 * The cores each group of processes used while `fn` ran (CPU seconds / wall seconds): which one
 * saturates. Groups are looked up again at the end, so backends that connect meanwhile count.
 */
export async function coresUsed<T>(groups: Record<string, () => number[]>, fn: () => Promise<T>): Promise<{ result: T; cores: Record<string, number> }> {
  const snapshot = () => Object.fromEntries(Object.entries(groups).map(([name, pids]) => [name, new Map(pids().map((p) => [p, cpuSecondsOf(p)]))]));
  const before = snapshot();
  const t0 = performance.now();
  const result = await fn();
  const wall = (performance.now() - t0) / 1000;
  const after = snapshot();
  const cores: Record<string, number> = {};
  for (const [name, end] of Object.entries(after)) {
    let used = 0;
    for (const [pid, cpu] of end) used += cpu - (before[name]!.get(pid) ?? 0);
    cores[name] = r2(used / wall);
  }
  return { result, cores };
}

/**
 * The follow-up's limit (scenario 2, and the scale run's largest hub): deletes the record and
 * rechecks, reindexes and re-caches its related records as set-based SQL in one transaction, in
 * this process. Times the derived-state work only.
 */
export async function setBasedFollowUp(pool: Pool, key: string): Promise<{ records: number; seconds: number; recordsPerSecond: number }> {
  return withTransaction(pool, async (tx) => {
    const { rows } = await tx.query<{ id: number }>('SELECT id FROM registry_objects WHERE key = $1', [key]);
    const id = Number(rows[0]!.id);
    const ids = (await relatedTo(tx, [id])).filter((x) => x !== id);
    await deleteRecordRows(tx, [id]);
    return setBasedRecompute(tx, ids);
  });
}

/** Rechecks, reindexes and re-caches the records as set-based SQL in the caller's transaction; times it. */
export async function setBasedRecompute(tx: PoolClient, ids: number[]): Promise<{ records: number; seconds: number; recordsPerSecond: number }> {
  const t0 = performance.now();
  await recheckQuality(tx, ids);
  await reindexRecords(tx, ids);
  await regenerateCache(tx, ids);
  const seconds = (performance.now() - t0) / 1000;
  return { records: ids.length, seconds, recordsPerSecond: Math.round(ids.length / seconds) };
}
