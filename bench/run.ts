/**
 * `npm run bench [-- --quick] [--cluster]`: builds its own registries with the generator and measures, side by
 * side in one run on this machine, what registry users feel: how fast their operation answers and
 * how soon everything derived from it is right again. Prints a table and writes the figures to
 * bench/results/. No figure here is asserted anywhere: the machine is shared and noisy, so what
 * counts are the ratios measured in the same run.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import PgBoss from 'pg-boss';
import { RegistryClient } from '../src/client/registry.ts';
import { TaskClient } from '../src/client/task-client.ts';
import { createPool, withTransaction, type Pool } from '../src/db/pool.ts';
import { migrate } from '../src/db/migrate.ts';
import { recheckQuality, regenerateCache, reindexRecords } from '../src/registry/derived.ts';
import { completeOperation, deleteRecordAndPlanFollowUp, followUpBatch, relatedTo } from '../src/registry/operations.ts';
import { rebuildDerived, seedRegistry } from '../src/registry/seed.ts';
import { coalescerWorkflowId } from '../src/client/workflow-ids.ts';
import { bareDeleteSql } from './activities.ts';
import {
  coresUsed,
  database,
  inPool,
  ms,
  pct,
  peakRss,
  postgresPids,
  r1,
  r2,
  setBasedFollowUp,
  staleRecords,
  startBenchDevServer,
  startRegistryBenchWorker,
} from './common.ts';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    cluster: { type: 'boolean', default: false },
    scale: { type: 'boolean', default: false },
  },
});
// `--cluster`: the scale-out benchmark (bench/cluster.ts) instead; it exits when done.
if (args.cluster) await import('./cluster.ts');
// `--scale`: the national-size run (bench/scale.ts) instead; it exits when done.
if (args.scale) await import('./scale.ts');
/** `--only 2,3` runs those scenarios alone (while tuning one); the default is all. */
const ONLY = new Set((args.only ?? '1,2,3,4,6').split(',').map(Number));
const QUICK = args.quick;
const SIZES = QUICK
  ? {
      answerSamples: 3,
      answerRelated: 200,
      answerRecords: 1500,
      throughputRelated: 1000,
      throughputRecords: 2500,
      burstRecords: 2000,
      burst: 20,
      tasks: 30,
      smallChanges: 4,
    }
  : {
      answerSamples: 12,
      answerRelated: 1000,
      answerRecords: 6000,
      throughputRelated: 10_000,
      throughputRecords: 18_000,
      burstRecords: 20_000,
      burst: 200,
      tasks: 400,
      smallChanges: 20,
    };
const FOLLOW_UP = {
  batchSize: Number(process.env.BENCH_BATCH ?? 500),
  concurrency: Number(process.env.BENCH_CONCURRENCY ?? 2),
  coalesce: { quietMs: 300, maxWaitMs: 3000 },
};
const TASK_QUEUE = 'bench-registry';
const BENCH_QUEUE = 'bench-baselines';
/** Scenario 4's rounds, each half as many workflows as `tasks`: A B B A. */
const TASK_ROUNDS = ['registryTask', 'minimal', 'minimal', 'registryTask'] as const;
const ROOT = path.join(import.meta.dirname, '..');

/** The same follow-up the workflows run, called inline: what a synchronous registry would make its users wait for. */
async function inlineFollowUp(pool: Pool, opId: string, batches: number) {
  for (let b = 0; b < batches; b++) {
    const ids = await followUpBatch(pool, opId, b);
    await recheckQuality(pool, ids);
    await reindexRecords(pool, ids);
    await regenerateCache(pool, ids);
  }
  await completeOperation(pool, opId);
}

/**
 * Adds activity hubs to a generated data source, each related to `size` of its collections (the
 * generator's own hubs share a fixed pool of records, too few for dozens of hubs of 1,000), and
 * brings the derived state of the data source up to date.
 */
async function addHubs(pool: Pool, dsPrefix: string, count: number, size: number): Promise<string[]> {
  const keys = await withTransaction(pool, async (tx) => {
    const ds = (await tx.query<{ id: number; key: string }>('SELECT id, key FROM data_sources WHERE key LIKE $1 LIMIT 1', [`${dsPrefix}%`])).rows[0]!;
    const out: string[] = [];
    for (let i = 0; i < count; i++) {
      const key = `${ds.key}/activity/bench-hub-${String(i).padStart(4, '0')}`;
      const { rows } = await tx.query<{ id: number }>(
        `INSERT INTO registry_objects (key, class, type, group_name, data_source_id, status, title, description)
         VALUES ($1, 'activity', 'project', $2, $3, 'PUBLISHED', $4, $5) RETURNING id`,
        [key, ds.key, ds.id, `Benchmark programme ${i}`, `A programme related to ${size} collections.`],
      );
      await tx.query(
        `INSERT INTO relations (from_id, to_key, relation_type)
         SELECT $1, key, 'hasOutput' FROM registry_objects WHERE data_source_id = $2 AND class = 'collection' ORDER BY md5(key || $3) LIMIT $4`,
        [rows[0]!.id, ds.id, String(i), size],
      );
      out.push(key);
    }
    return out;
  });
  const ids = (
    await pool.query<{ id: number }>('SELECT ro.id FROM registry_objects ro JOIN data_sources d ON d.id = ro.data_source_id WHERE d.key LIKE $1', [
      `${dsPrefix}%`,
    ])
  ).rows.map((r) => Number(r.id));
  await rebuildDerived(pool, ids);
  return keys;
}

/**
 * Scenario 6: deletions of records with one related record, one at a time. "Consistent" is the
 * follow-up's commit (completed_at, PostgreSQL's clock on this machine) after the call began;
 * "learnt" is how long after that commit awaitDeletion returned, for a caller with the database
 * (completion notices) and one without (asking the coalescer, with backoff), side by side.
 */
async function smallChanges() {
  log(`seeding scenario 6: ${SIZES.smallChanges * 2} records with one related record`);
  await seedRegistry(pool, { records: 400, dataSources: 1, hubs: 0, seed: 606, prefix: 's6-' });
  const hubs = await addHubs(pool, 's6-', SIZES.smallChanges * 2, 1);
  const withDatabase = new RegistryClient(client, { taskQueue: TASK_QUEUE, followUp: FOLLOW_UP, pool });
  const callers = { 'with the database (completion notices)': withDatabase, 'without (asks the coalescer)': registry };
  const figures: Record<string, { consistentMs: number[]; learntMs: number[] }> = {};
  log('scenario 6: small changes');
  for (let i = 0; i < hubs.length; i++) {
    const [name, caller] = Object.entries(callers)[i % 2]!;
    const startedAt = Date.now();
    const out = await caller.deleteRecord(hubs[i]!);
    await caller.awaitDeletion(hubs[i]!, out.runId);
    const learntAt = Date.now();
    const opId = out.opId;
    const { rows } = await pool.query<{ done: number }>(
      'SELECT (extract(epoch FROM completed_at) * 1000)::float8 AS done FROM registry_operations WHERE op_id = $1',
      [opId],
    );
    const f = (figures[name] ??= { consistentMs: [], learntMs: [] });
    f.consistentMs.push(rows[0]!.done - startedAt);
    f.learntMs.push(learntAt - rows[0]!.done);
  }
  const quiet = FOLLOW_UP.coalesce.quietMs;
  const out = Object.fromEntries(
    Object.entries(figures).map(([name, f]) => [
      name,
      {
        consistentP50Ms: r1(pct(f.consistentMs, 50)),
        consistentP95Ms: r1(pct(f.consistentMs, 95)),
        learntP50Ms: r1(pct(f.learntMs, 50)),
        learntP95Ms: r1(pct(f.learntMs, 95)),
      },
    ]),
  );
  for (const [name, f] of Object.entries(out)) {
    table.push([
      '6 small changes',
      `consistent after (${name})`,
      `p50 ${f.consistentP50Ms} ms, p95 ${f.consistentP95Ms} ms`,
      `quiet period ${quiet} ms + ${r1(f.consistentP50Ms - quiet)} ms`,
    ]);
    table.push(['6 small changes', `caller learns it (${name})`, `p50 ${f.learntP50Ms} ms, p95 ${f.learntP95Ms} ms after the commit`, '']);
  }
  return { samples: hubs.length, quietMs: quiet, ...out };
}

// ---------- main ----------
const started = Date.now();
const log = (m: string) => console.log(`[${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${m}`);
const db = await database();
const server = await startBenchDevServer();
await migrate(db.url);
const pool = createPool(db.url, { max: 20 });
const worker = await startRegistryBenchWorker(server.address, db.url, TASK_QUEUE, BENCH_QUEUE);
const client = new Client({ connection: await Connection.connect({ address: server.address }) });
const registry = new RegistryClient(client, { taskQueue: TASK_QUEUE, followUp: FOLLOW_UP });
const tasks = new TaskClient(client, TASK_QUEUE);
const pids = { worker: worker.registry.pid, baselines: worker.baselines.pid, temporal: server.process.pid };
const coreGroups = {
  worker: () => [pids.worker!],
  'baseline worker': () => [pids.baselines!],
  temporal: () => [pids.temporal!],
  postgresql: postgresPids,
  'bench driver': () => [process.pid],
};
/** CPU milliseconds per unit of work of each process group, from the cores it used over `seconds`. */
const cpuMsPer = (cores: Record<string, number>, seconds: number, units: number) =>
  Object.fromEntries(Object.entries(cores).map(([g, c]) => [g, Math.round((c * seconds * 1000) / units)]));
const cpuText = (ours: Record<string, number>, floor: Record<string, number>) =>
  Object.entries(ours)
    .filter(([g]) => ours[g] || floor[g])
    .map(([g, c]) => `${g} ${c} / ${floor[g] ?? 0}`)
    .join(', ');
const coresText = (cores: Record<string, number>) =>
  Object.entries(cores)
    .map(([g, c]) => `${g} ${c}`)
    .join(', ');
const results: Record<string, unknown> = {
  date: new Date().toISOString(),
  quick: QUICK,
  machine: { cpus: os.cpus().length, memoryGb: Math.round(os.totalmem() / 2 ** 30), node: process.version },
  settings: {
    ...FOLLOW_UP,
    sizes: SIZES,
    // What the registry worker process ran with, when tuned (a run is only comparable with its like).
    ...(process.env.BENCH_WORKER_NODE_FLAGS ? { workerNodeFlags: process.env.BENCH_WORKER_NODE_FLAGS } : {}),
    ...(process.env.WORKER_CACHED_WORKFLOWS ? { workerCachedWorkflows: Number(process.env.WORKER_CACHED_WORKFLOWS) } : {}),
  },
};
const table: string[][] = [];

try {
  // ---- 1. answer time of a deletion with N related records ----
  if (ONLY.has(1)) {
    log(`seeding scenario 1: ${SIZES.answerRecords} records, ${SIZES.answerSamples * 4} hubs of ${SIZES.answerRelated}`);
    await seedRegistry(pool, { records: SIZES.answerRecords, dataSources: 1, hubs: 0, seed: 101, prefix: 's1-' });
    const hubs = await addHubs(pool, 's1-', SIZES.answerSamples * 4, SIZES.answerRelated);
    const approaches = {
      'ours (update-with-start, follow-up durably started)': async (key: string) => {
        const t0 = performance.now();
        await registry.deleteRecord(key);
        const t = ms(t0);
        await registry.awaitDeletion(key); // let the follow-up finish before the next sample
        return t;
      },
      'follow-up inline (same work, synchronous)': async (key: string) => {
        const t0 = performance.now();
        const op = await deleteRecordAndPlanFollowUp(pool, { key, opId: `inline:${key}`, batchSize: FOLLOW_UP.batchSize });
        await inlineFollowUp(pool, op.opId, op.batches);
        return ms(t0);
      },
      'bare SQL delete (no follow-up at all)': async (key: string) => {
        const t0 = performance.now();
        await bareDeleteSql(pool, key);
        return ms(t0);
      },
      'least durable hand-off (workflow + 1 activity doing the bare delete)': async (key: string) => {
        const t0 = performance.now();
        await client.workflow.execute('bareDeleteWorkflow', { taskQueue: BENCH_QUEUE, workflowId: `bare-delete:${key}`, args: [key] });
        return ms(t0);
      },
    };
    const names = Object.keys(approaches) as (keyof typeof approaches)[];
    const times: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
    log('scenario 1: deletion answer times');
    const s1mem = await peakRss(pids, async () => {
      for (let i = 0; i < SIZES.answerSamples; i++) {
        // Rotate the order each sample so that no approach always runs first or last.
        for (let j = 0; j < names.length; j++) {
          const name = names[(i + j) % names.length]!;
          times[name]!.push(await approaches[name](hubs[i * 4 + j]!));
        }
      }
    });
    const bare = pct(times[names[2]!]!, 50);
    const answer = Object.fromEntries(
      names.map((n) => [n, { p50: r1(pct(times[n]!, 50)), p95: r1(pct(times[n]!, 95)), vsBareSql: r2(pct(times[n]!, 50) / bare) }]),
    );
    results.answerTime = { relatedRecords: SIZES.answerRelated, samples: SIZES.answerSamples, ms: answer, peakMemoryMb: s1mem.peakMb };
    for (const n of names) table.push(['1 answer', n, `p50 ${answer[n]!.p50} ms, p95 ${answer[n]!.p95} ms`, `${answer[n]!.vsBareSql}x bare SQL`]);
  }

  // ---- 2. follow-up throughput ----
  if (ONLY.has(2)) {
    log(`seeding scenario 2: ${SIZES.throughputRecords} records, 2 hubs of ${SIZES.throughputRelated}`);
    await seedRegistry(pool, { records: SIZES.throughputRecords, dataSources: 1, hubs: 0, seed: 202, prefix: 's2-' });
    const s2hubs = await addHubs(pool, 's2-', 2, SIZES.throughputRelated);
    log('scenario 2: follow-up throughput');
    const s2mem = await peakRss(pids, async () => {
      const [hubA, hubB] = s2hubs as [string, string];
      const t0 = performance.now();
      const out = await registry.deleteRecord(hubA);
      const tAnswer = performance.now();
      // Done when PostgreSQL says so: the operation row is marked complete by the round that covered it.
      for (;;) {
        const { rows } = await pool.query('SELECT completed_at FROM registry_operations WHERE op_id = $1', [out.opId]);
        if (rows[0]?.completed_at) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      const oursSec = (performance.now() - tAnswer) / 1000;
      const totalSec = (performance.now() - t0) / 1000;
      const done = await registry.awaitDeletion(hubA);
      // The limit: the same work, set-based, in one transaction, in this process.
      const sql = await setBasedFollowUp(pool, hubB);
      return {
        ours: { records: done.affected, seconds: r2(oursSec), recordsPerSecond: Math.round(done.affected / oursSec), secondsIncludingAnswer: r2(totalSec) },
        sql: { ...sql, seconds: r2(sql.seconds) },
      };
    });
    const tp = s2mem.result;
    const ratio = r2(tp.ours.recordsPerSecond / tp.sql.recordsPerSecond);
    results.followUpThroughput = { ...tp, ratio, peakMemoryMb: s2mem.peakMb };
    table.push([
      '2 throughput',
      `ours (workflows, batches of ${FOLLOW_UP.batchSize}, ${FOLLOW_UP.concurrency} at a time)`,
      `${tp.ours.recordsPerSecond} records/s (${tp.ours.records} in ${tp.ours.seconds} s)`,
      `${ratio} of the limit`,
    ]);
    table.push([
      '2 throughput',
      'set-based SQL, one transaction (the limit)',
      `${tp.sql.recordsPerSecond} records/s (${tp.sql.records} in ${tp.sql.seconds} s)`,
      '1',
    ]);
  }

  // ---- 3. bursts ----
  if (ONLY.has(3)) {
    log(`seeding scenario 3: a data source of ${SIZES.burstRecords} records`);
    await seedRegistry(pool, { records: SIZES.burstRecords, dataSources: 1, seed: 303, prefix: 's3-' });
    const dsKey = (await pool.query<{ key: string }>("SELECT key FROM data_sources WHERE key LIKE 's3-%'")).rows[0]!.key;
    const victims = (
      await pool.query<{ key: string; id: number }>(
        `SELECT ro.key, ro.id FROM registry_objects ro JOIN data_sources d ON d.id = ro.data_source_id
      WHERE d.key = $1 AND ro.key NOT LIKE '%/hub-%' AND EXISTS (SELECT 1 FROM relations r WHERE r.from_id = ro.id)
      ORDER BY md5(ro.key) LIMIT $2`,
        [dsKey, SIZES.burst * 3],
      )
    ).rows;
    const dsSize = async () =>
      Number(
        (await pool.query('SELECT count(*) FROM registry_objects ro JOIN data_sources d ON d.id = ro.data_source_id WHERE d.key = $1', [dsKey])).rows[0].count,
      );
    const affectedUnion = async (ids: number[]) => (await withTransaction(pool, (tx) => relatedTo(tx, ids))).filter((x) => !ids.includes(x)).length;
    const burstResults: Record<string, unknown> = {};
    // `answeredSeconds`: when the last change was answered, from the burst's start (where the time goes: the changes or the tail).
    const strategies: [string, (keys: string[]) => Promise<{ reprocessed: number; answeredSeconds?: number }>][] = [
      [
        "(a) the original's strategy: the data source's whole chain per change, WAITING dedup",
        async (keys) => {
          // The original ran one worker: a chain queued while another ran stayed WAITING, and every
          // change until it started merged into it. So: while changes keep coming, one chain after
          // the other (RUN_QUALITY_CHECK -> GENERATE_CACHE -> INDEX_RECORDS, as prerequisites).
          let dirty = false;
          let burstOver = false;
          const chains: string[][] = [];
          const runner = (async () => {
            for (;;) {
              if (!dirty) {
                if (burstOver) return;
                await new Promise((r) => setTimeout(r, 20));
                continue;
              }
              dirty = false;
              const q = await tasks.addTask({ method: 'RUN_QUALITY_CHECK', dataSourceKey: dsKey });
              const c = await tasks.addTask({ method: 'GENERATE_CACHE', dataSourceKey: dsKey, prerequisiteTaskId: q.taskId });
              const i = await tasks.addTask({ method: 'INDEX_RECORDS', dataSourceKey: dsKey, prerequisiteTaskId: c.taskId });
              chains.push([q.taskId, c.taskId, i.taskId]);
              await client.workflow.getHandle(i.taskId).result();
            }
          })();
          await inPool(keys, 32, async (key) => {
            await bareDeleteSql(pool, key);
            dirty = true;
          });
          burstOver = true;
          await runner;
          // Each chain went over the whole data source once.
          return { reprocessed: chains.length * (await dsSize()) };
        },
      ],
      [
        '(b) a plain job queue: one pg-boss job per change, same PostgreSQL',
        async (keys) => {
          const boss = new PgBoss({ connectionString: db.url, schema: 'pgboss_bench', max: 10 });
          boss.on('error', () => undefined);
          await boss.start();
          await boss.createQueue('followup');
          let remaining = keys.length;
          let reprocessed = 0;
          let resolveDone!: () => void;
          const done = new Promise<void>((r) => (resolveDone = r));
          for (let w = 0; w < FOLLOW_UP.concurrency; w++) {
            await boss.work<{ opId: string; batches: number; affected: number }>('followup', { batchSize: 1, pollingIntervalSeconds: 0.5 }, async ([job]) => {
              await inlineFollowUp(pool, job!.data.opId, job!.data.batches);
              reprocessed += job!.data.affected;
              if (--remaining === 0) resolveDone();
            });
          }
          await inPool(keys, 32, async (key) => {
            const op = await deleteRecordAndPlanFollowUp(pool, { key, opId: `pgboss:${key}`, batchSize: FOLLOW_UP.batchSize });
            await boss.send('followup', { opId: op.opId, batches: op.batches, affected: op.affected });
          });
          await done;
          await boss.stop({ graceful: true, wait: true });
          return { reprocessed };
        },
      ],
      [
        '(c) ours: coalesced per data source (signal-with-start, quiet period, one pass over the union)',
        async (keys) => {
          // Derived state is right when PostgreSQL has the follow-ups completed: a caller with the
          // database learns that from the completion's notice (ms); one without asks the coalescer
          // with a backoff of up to 1 s, 200 callers at once (scenario 6 compares the two).
          const notified = new RegistryClient(client, { taskQueue: TASK_QUEUE, followUp: FOLLOW_UP, pool });
          const before = (await client.workflow
            .getHandle(coalescerWorkflowId(dsKey, TASK_QUEUE))
            .query('coalescer')
            .catch(() => undefined)) as { recordsProcessed: number } | undefined;
          const t0 = performance.now();
          await inPool(keys, 32, (key) => notified.deleteRecord(key));
          const answeredSeconds = r2(ms(t0) / 1000);
          await Promise.all(keys.map((k) => notified.awaitDeletion(k)));
          const after = (await client.workflow.getHandle(coalescerWorkflowId(dsKey, TASK_QUEUE)).query('coalescer')) as {
            recordsProcessed: number;
            rounds: number;
          };
          return { reprocessed: after.recordsProcessed - (before?.recordsProcessed ?? 0), answeredSeconds };
        },
      ],
    ];
    let oursCores: Record<string, number> | undefined;
    for (let s = 0; s < strategies.length; s++) {
      const [name, run] = strategies[s]!;
      const batch = victims.slice(s * SIZES.burst, (s + 1) * SIZES.burst);
      const affected = await affectedUnion(batch.map((v) => Number(v.id)));
      log(`scenario 3: ${name}`);
      const t0 = performance.now();
      const { result: m, cores } = await coresUsed(coreGroups, () => peakRss(pids, () => run(batch.map((v) => v.key))));
      const seconds = r2(ms(t0) / 1000);
      const stale = await staleRecords(pool, 's3-');
      burstResults[name] = {
        deletions: batch.length,
        recordsAffected: affected,
        recordsReprocessed: m.result.reprocessed,
        amplification: r2(m.result.reprocessed / Math.max(1, affected)),
        secondsUntilAllDerivedStateRight: seconds,
        ...(m.result.answeredSeconds !== undefined ? { secondsUntilEveryChangeAnswered: m.result.answeredSeconds } : {}),
        staleRecordsAfterwards: stale,
        peakMemoryMb: m.peakMb,
        cores,
        cpuMsPerChange: cpuMsPer(cores, seconds, batch.length),
      };
      if (name.startsWith('(c)')) oursCores = cores;
      table.push([
        '3 burst',
        name,
        `${seconds} s until all derived state is right${m.result.answeredSeconds !== undefined ? ` (every change answered after ${m.result.answeredSeconds} s)` : ''} (stale afterwards: ${stale})`,
        `amplification ${r2(m.result.reprocessed / Math.max(1, affected))} (${m.result.reprocessed} / ${affected})`,
      ]);
    }
    // Issue 13's floor: as many minimal workflows (one activity) at the same concurrency, plus one quiet period.
    const tf = performance.now();
    const { cores: floorCores } = await coresUsed(coreGroups, () =>
      inPool(
        Array.from({ length: SIZES.burst }, (_, i) => i),
        32,
        (i) => client.workflow.execute('oneActivityWorkflow', { taskQueue: BENCH_QUEUE, workflowId: `bench-floor-${started}-${i}`, args: [] }),
      ),
    );
    const floorWorkflowSeconds = ms(tf) / 1000;
    const floorSeconds = r2(floorWorkflowSeconds + FOLLOW_UP.coalesce.quietMs / 1000);
    const ours = Object.entries(burstResults).find(([name]) => name.startsWith('(c)'))?.[1] as { secondsUntilAllDerivedStateRight: number } | undefined;
    const oursToFloor = ours ? r2(ours.secondsUntilAllDerivedStateRight / floorSeconds) : undefined;
    table.push([
      '3 burst',
      `floor: ${SIZES.burst} minimal workflows, 32 at a time, plus one quiet period`,
      `${floorSeconds} s`,
      `ours ${oursToFloor}x the floor`,
    ]);
    // Which resource the burst spends: CPU per change of each process group, ours against the floor's workflows.
    const floorCpu = cpuMsPer(floorCores, floorWorkflowSeconds, SIZES.burst);
    if (oursCores) {
      const oursCpu = cpuMsPer(oursCores, ours!.secondsUntilAllDerivedStateRight, SIZES.burst);
      table.push([
        '3 burst',
        'CPU per change, ms: ours (c) / floor',
        cpuText(oursCpu, floorCpu),
        `cores used: ours ${coresText(oursCores)}; floor ${coresText(floorCores)}`,
      ]);
    }
    results.burst = {
      dataSourceRecords: SIZES.burstRecords,
      ...burstResults,
      floor: { seconds: floorSeconds, oursToFloor, cores: floorCores, cpuMsPerChange: floorCpu },
    };
  }

  // ---- 4. task throughput ----
  if (ONLY.has(4)) {
    log(`scenario 4: ${SIZES.tasks} no-op tasks vs ${SIZES.tasks} one-activity workflows, in rounds ${TASK_ROUNDS.join(', ')}`);
    const s4 = await peakRss(pids, async () => {
      // As `temporal workflow start` would (NOOP is a bench-only module the client does not list); a data source each, so no dedup.
      const noopTask = (i: number) =>
        client.workflow.execute('registryTask', {
          taskQueue: TASK_QUEUE,
          workflowId: `bench-noop-${started}-${i}`,
          args: [{ method: 'NOOP', dataSourceKey: `bench-${i}` }],
        });
      const minimal = (i: number) =>
        client.workflow.execute('oneActivityWorkflow', { taskQueue: BENCH_QUEUE, workflowId: `bench-min-${started}-${i}`, args: [] });
      // Side by side in rounds, A B B A: the machine's drift during the scenario weighs on both kinds alike.
      const rounds = TASK_ROUNDS.map((kind, r) => ({
        kind,
        ids: Array.from({ length: (2 * SIZES.tasks) / TASK_ROUNDS.length }, (_, i) => r * SIZES.tasks + i),
      }));
      const seconds = { registryTask: 0, minimal: 0 };
      const count = { registryTask: 0, minimal: 0 };
      // Which process saturates, per kind: CPU seconds of each over the kind's wall seconds.
      const cpu = { registryTask: {} as Record<string, number>, minimal: {} as Record<string, number> };
      for (const { kind, ids } of rounds) {
        const t0 = performance.now();
        const { cores } = await coresUsed(coreGroups, () => inPool(ids, 50, kind === 'registryTask' ? noopTask : minimal));
        const roundSeconds = ms(t0) / 1000;
        seconds[kind] += roundSeconds;
        count[kind] += ids.length;
        for (const [group, used] of Object.entries(cores)) cpu[kind][group] = (cpu[kind][group] ?? 0) + used * roundSeconds;
      }
      const coresPerKind = (kind: keyof typeof seconds) => Object.fromEntries(Object.entries(cpu[kind]).map(([g, c]) => [g, r2(c / seconds[kind])]));
      return {
        registryTask: Math.round(count.registryTask / seconds.registryTask),
        minimal: Math.round(count.minimal / seconds.minimal),
        ratio: r2(count.registryTask / seconds.registryTask / (count.minimal / seconds.minimal)),
        coresUsed: { registryTask: coresPerKind('registryTask'), minimal: coresPerKind('minimal') },
        overheadMsPerTask: r1((seconds.registryTask / count.registryTask - seconds.minimal / count.minimal) * 1000),
      };
    });
    results.taskThroughput = {
      tasks: SIZES.tasks,
      tasksPerSecond: { registryTask: s4.result.registryTask, minimalWorkflow: s4.result.minimal },
      ratio: s4.result.ratio,
      rounds: TASK_ROUNDS,
      coresUsed: s4.result.coresUsed,
      overheadMsPerTask: s4.result.overheadMsPerTask,
      peakMemoryMb: s4.peakMb,
    };
    table.push(['4 tasks', 'registryTask (no-op)', `${s4.result.registryTask} tasks/s`, `${s4.result.ratio} of minimal`]);
    table.push(['4 tasks', 'minimal workflow, one activity', `${s4.result.minimal} tasks/s`, '1']);
    for (const kind of ['registryTask', 'minimal'] as const) table.push(['4 tasks', `cores used: ${kind}`, coresText(s4.result.coresUsed[kind]), '']);
  }

  // ---- 6. small changes: how soon a deletion with one related record is consistent, and how soon its caller learns it ----
  if (ONLY.has(6)) {
    results.smallChanges = await smallChanges();
  }

  // ---- 5. memory (collected per scenario above) ----
  for (const [scenario, key] of [
    ['1 answer', 'answerTime'],
    ['2 throughput', 'followUpThroughput'],
    ['4 tasks', 'taskThroughput'],
  ] as const) {
    if (!results[key]) continue;
    const mem = (results[key] as { peakMemoryMb: Record<string, number> }).peakMemoryMb;
    table.push(['5 memory', scenario, `worker ${mem.worker} MB, baseline worker ${mem.baselines} MB, Temporal ${mem.temporal} MB`, '']);
  }
  for (const [name, r] of Object.entries((results.burst ?? {}) as Record<string, unknown>)) {
    const mem = (r as { peakMemoryMb?: Record<string, number> } | undefined)?.peakMemoryMb;
    if (!mem) continue; // the floor has no memory figure
    table.push(['5 memory', `3 burst ${name.slice(0, 3)}`, `worker ${mem.worker} MB, baseline worker ${mem.baselines} MB, Temporal ${mem.temporal} MB`, '']);
  }
} finally {
  results.totalSeconds = Math.round((Date.now() - started) / 1000);
  worker.stop();
  await client.connection.close();
  await pool.end();
  await server.stop();
  await db.stop();
}

const widths = [0, 1, 2, 3].map((c) => Math.max(...table.map((r) => (r[c] ?? '').length)));
console.log(`\nregistry-taskmgr benchmarks (${QUICK ? 'quick' : 'full'}; ${results.totalSeconds} s)\n`);
for (const r of table) console.log(r.map((c, i) => (c ?? '').padEnd(widths[i]!)).join('  '));
const dir = path.join(ROOT, 'bench', 'results');
fs.mkdirSync(dir, { recursive: true });
const kind = QUICK || args.only ? 'quick' : 'full'; // partial runs are not kept either
const file = path.join(dir, `${kind}-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
fs.writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
console.log(`\nfigures written to ${path.relative(ROOT, file)}`);
process.exit(0);
