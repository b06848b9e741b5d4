/**
 * `npm run bench -- --cluster [--quick]`: scale-out, side by side in one run. Scenario 3 (a burst
 * of deletions in one data source, coalesced per data source) and scenario 4 (no-op registry
 * tasks against minimal one-activity workflows) on the dev server with one worker process, then on
 * a Temporal cluster of separate processes on PostgreSQL (src/cluster, default dynamic config,
 * plain gRPC) with 1, 2 and 3 worker processes. Reports answer times, seconds until the derived
 * state is right, tasks per second, and the cores each process group used meanwhile: on two cores
 * the sum says where the curve flattens and which process saturates.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import type { ChildProcess } from 'node:child_process';
import { Client, Connection } from '@temporalio/client';
import { RegistryClient } from '../src/client/registry.ts';
import { createPool, type Pool } from '../src/db/pool.ts';
import { migrate } from '../src/db/migrate.ts';
import { seedRegistry } from '../src/registry/seed.ts';
import { startTestCluster } from '../test/cluster-server.ts';
import { coresUsed, database, inPool, ms, pct, postgresPids, r1, r2, staleRecords, startBenchDevServer, startWorker } from './common.ts';

const { values: args } = parseArgs({ options: { quick: { type: 'boolean', default: false }, cluster: { type: 'boolean', default: true } } });
const SIZES = args.quick ? { burstRecords: 2000, burst: 20, tasks: 30 } : { burstRecords: 20_000, burst: 200, tasks: 400 };
const FOLLOW_UP = { batchSize: 500, concurrency: 2, coalesce: { quietMs: 300, maxWaitMs: 3000 } };
const ROOT = path.join(import.meta.dirname, '..');
const started = Date.now();
const log = (m: string) => console.log(`[${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${m}`);

/** Where the scenarios run: a Temporal address and its processes by group, for the CPU figures. */
interface Target {
  name: string;
  address: string;
  workers: number;
  temporalPids: Record<string, number[]>;
}

interface TargetFigures {
  burst: { deletions: number; answerMs: { p50: number; p95: number }; secondsUntilRight: number; staleAfterwards: number; cores: Record<string, number> };
  tasks: { registryTaskPerSecond: number; minimalPerSecond: number; ratio: number; cores: Record<string, number> };
}

async function startWorkers(target: Target, databaseUrl: string, queue: string): Promise<ChildProcess[]> {
  const env = {
    TEMPORAL_ADDRESS: target.address,
    DATABASE_URL: databaseUrl,
    TEMPORAL_TASK_QUEUE: queue,
    BENCH_TASK_QUEUE: `${queue}-baselines`,
    LOG_LEVEL: 'warn',
  };
  return Promise.all(Array.from({ length: target.workers }, () => startWorker(env)));
}

async function stopWorkers(workers: ChildProcess[]) {
  await Promise.all(
    workers.map((w) => new Promise<void>((resolve) => (w.exitCode !== null ? resolve() : (w.once('exit', () => resolve()), w.kill('SIGTERM'))))),
  );
}

/** Scenario 3 (ours) and 4 on one target, with its own task queue (so its own coalescer). */
async function runTarget(target: Target, pool: Pool, databaseUrl: string, victims: string[]): Promise<TargetFigures> {
  const queue = `bench-${target.name.replace(/\W+/g, '-')}-${started}`;
  const workers = await startWorkers(target, databaseUrl, queue);
  const client = new Client({ connection: await Connection.connect({ address: target.address }) });
  const registry = new RegistryClient(client, { taskQueue: queue, followUp: FOLLOW_UP });
  const groups: Record<string, () => number[]> = {
    'worker processes': () => workers.map((w) => w.pid!),
    ...Object.fromEntries(Object.entries(target.temporalPids).map(([name, pids]) => [name, () => pids])),
    postgresql: postgresPids,
    'bench driver': () => [process.pid],
  };
  try {
    // Warm up: the workers' first workflow task loads the workflow bundle.
    await client.workflow.execute('registryTask', { taskQueue: queue, workflowId: `${queue}-warm-up`, args: [{ method: 'NOOP', dataSourceKey: 'warm-up' }] });
    log(`${target.name}: burst of ${victims.length} deletions`);
    const answers: number[] = [];
    const t0 = performance.now();
    const burst = await coresUsed(groups, async () => {
      await inPool(victims, 32, async (key) => {
        const t = performance.now();
        await registry.deleteRecord(key);
        answers.push(ms(t));
      });
      for (const key of victims) await registry.awaitDeletion(key);
    });
    const secondsUntilRight = r2(ms(t0) / 1000);
    const staleAfterwards = await staleRecords(pool, 'c3-');
    log(`${target.name}: ${SIZES.tasks} no-op tasks, then ${SIZES.tasks} minimal workflows`);
    const tasks = await coresUsed(groups, async () => {
      const run = async (type: string, taskQueue: string, args: (i: number) => unknown[]) => {
        const t = performance.now();
        await inPool(
          Array.from({ length: SIZES.tasks }, (_, i) => i),
          50,
          (i) => client.workflow.execute(type, { taskQueue, workflowId: `${queue}-${type}-${i}`, args: args(i) }),
        );
        return Math.round(SIZES.tasks / (ms(t) / 1000));
      };
      const registryTaskPerSecond = await run('registryTask', queue, (i) => [{ method: 'NOOP', dataSourceKey: `bench-${i}` }]);
      const minimalPerSecond = await run('oneActivityWorkflow', `${queue}-baselines`, () => []);
      return { registryTaskPerSecond, minimalPerSecond, ratio: r2(registryTaskPerSecond / minimalPerSecond) };
    });
    return {
      burst: {
        deletions: victims.length,
        answerMs: { p50: r1(pct(answers, 50)), p95: r1(pct(answers, 95)) },
        secondsUntilRight,
        staleAfterwards,
        cores: burst.cores,
      },
      tasks: { ...tasks.result, cores: tasks.cores },
    };
  } finally {
    await client.connection.close();
    await stopWorkers(workers);
  }
}

/** Burst victims: records of the data source with relations, in a stable random order. */
async function seedBurstDataSource(pool: Pool, count: number): Promise<string[]> {
  await seedRegistry(pool, { records: SIZES.burstRecords, dataSources: 1, seed: 303, prefix: 'c3-' });
  const { rows } = await pool.query<{ key: string }>(
    `SELECT ro.key FROM registry_objects ro JOIN data_sources d ON d.id = ro.data_source_id
      WHERE d.key LIKE 'c3-%' AND ro.key NOT LIKE '%/hub-%' AND EXISTS (SELECT 1 FROM relations r WHERE r.from_id = ro.id)
      ORDER BY md5(ro.key) LIMIT $1`,
    [count],
  );
  return rows.map((r) => r.key);
}

function printTable(figures: Record<string, TargetFigures>) {
  const rows: string[][] = [['target', 'burst answer p50 / p95', 'until right', 'registryTask/s', 'minimal/s', 'cores used in the burst (and the tasks)']];
  for (const [name, f] of Object.entries(figures)) {
    const cores = Object.entries(f.burst.cores)
      .map(([g, c]) => `${g} ${c} (${f.tasks.cores[g]})`)
      .join(', ');
    rows.push([
      name,
      `${f.burst.answerMs.p50} / ${f.burst.answerMs.p95} ms`,
      `${f.burst.secondsUntilRight} s (stale ${f.burst.staleAfterwards})`,
      String(f.tasks.registryTaskPerSecond),
      String(f.tasks.minimalPerSecond),
      cores,
    ]);
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  for (const r of rows) console.log(r.map((cell, i) => cell.padEnd(widths[i]!)).join('  '));
}

const db = await database();
await migrate(db.url);
const pool = createPool(db.url, { max: 10 });
const targets = 4;
log(`seeding a data source of ${SIZES.burstRecords} records`);
const victims = await seedBurstDataSource(pool, SIZES.burst * targets);
const slice = (i: number) => victims.slice(i * SIZES.burst, (i + 1) * SIZES.burst);
const figures: Record<string, TargetFigures> = {};
try {
  // The dev server as the other benchmarks run it.
  const dev = await startBenchDevServer();
  try {
    figures['dev server, 1 worker'] = await runTarget(
      { name: 'dev server, 1 worker', address: dev.address, workers: 1, temporalPids: { 'temporal dev server': [dev.process.pid!] } },
      pool,
      db.url,
      slice(0),
    );
  } finally {
    await dev.stop();
  }
  log('starting the cluster');
  const cluster = await startTestCluster(db.adminUrl);
  const pidsOf = (...names: string[]) => names.map((n) => cluster.processes.get(n)!.child.pid!);
  const temporalPids = {
    history: pidsOf('history-1', 'history-2'),
    matching: pidsOf('matching'),
    frontend: pidsOf('frontend'),
    'temporal worker': pidsOf('worker'),
  };
  try {
    for (const workers of [1, 2, 3]) {
      const name = `cluster, ${workers} worker${workers > 1 ? 's' : ''}`;
      figures[name] = await runTarget({ name, address: cluster.address, workers, temporalPids }, pool, db.url, slice(workers));
    }
  } finally {
    await cluster.stop();
  }
} finally {
  await pool.end();
  await db.stop();
}

console.log(
  `\nregistry-taskmgr scale-out benchmark (${args.quick ? 'quick' : 'full'}; ${Math.round((Date.now() - started) / 1000)} s; ${os.cpus().length} cores)\n`,
);
printTable(figures);
const dir = path.join(ROOT, 'bench', 'results');
fs.mkdirSync(dir, { recursive: true });
const file = path.join(dir, `cluster-${args.quick ? 'quick' : 'full'}-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
fs.writeFileSync(
  file,
  `${JSON.stringify({ date: new Date().toISOString(), sizes: SIZES, followUp: FOLLOW_UP, machine: { cpus: os.cpus().length, node: process.version }, figures }, null, 2)}\n`,
);
console.log(`\nfigures written to ${path.relative(ROOT, file)}`);
process.exit(0);
