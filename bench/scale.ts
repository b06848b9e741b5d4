/**
 * `npm run bench -- --scale`: the registry at national size (1,000,000 records; BENCH_SCALE_RECORDS
 * changes it). On a fresh database and an in-memory dev server it measures, in one run:
 * - the generator: records and relations written with COPY, then the derived state computed, in
 *   three steps (a fifth, three fifths, all), with a hub's follow-up against set-based SQL after each;
 * - the maintenance scan for stale records (HOURLY_REGISTRY_MAINTENANCE's, over the marked records)
 *   beside every record compared, with its plan;
 * - a record search and a page of the task list, as the admin page asks for them;
 * - the answer time of a deletion against the number of related records (10 to 100,000), and
 *   the follow-up's throughput at each size, plotted to an SVG next to the figures;
 * - fairness: a small data source's deletions, idle and while the largest data source syncs;
 * - SYNC_DATASOURCE of another large data source against the same work as set-based SQL.
 * About 15 minutes here. Not in CI; nothing is asserted.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Client, Connection } from '@temporalio/client';
import { RegistryClient } from '../src/client/registry.ts';
import { TaskClient } from '../src/client/task-client.ts';
import { migrate } from '../src/db/migrate.ts';
import { createPool, withTransaction, type Pool } from '../src/db/pool.ts';
import { searchRecords } from '../src/registry/browse.ts';
import { rebuildDerived, seedRegistry } from '../src/registry/seed.ts';
import { dataSourcesBySize, idsForDataSource } from '../src/registry/scope.ts';
import { SCAN_MARKED_RECORDS, scanMarkedRecords, STALE_RECORDS_EVERYWHERE } from '../src/registry/stale-marks.ts';
import { database, ms, pct, peakRss, r1, setBasedFollowUp, setBasedRecompute, startBenchDevServer, startRegistryBenchWorker } from './common.ts';
import { answerCurveSvg, sizeCurveSvg } from './plot.ts';

const RECORDS = Number(process.env.BENCH_SCALE_RECORDS ?? 1_000_000);
const CURVE = [10, 1_000, 10_000, 100_000].filter((n) => n <= RECORDS / 5);
const SAMPLES = 3;
/** Deletions timed in the small data source, idle and again while the largest data source syncs. */
const FAIRNESS_SAMPLES = 7;
const TASK_QUEUE = 'bench-scale';
const BENCH_QUEUE = 'bench-scale-baselines';
const FOLLOW_UP = { batchSize: 500, concurrency: 2, coalesce: { quietMs: 300, maxWaitMs: 3000 } };
const ROOT = path.join(import.meta.dirname, '..');
const started = Date.now();
const log = (m: string) => console.log(`[${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${m}`);
const p50 = (xs: number[]) => r1(pct(xs, 50));

/**
 * The registry grows in three steps (a fifth, three fifths, all of RECORDS), each its own data
 * sources of about a fifth of RECORDS; after each, the follow-up of a hub is measured at that size.
 */
const STAGES = [
  { share: 1, dataSources: 1, hubs: 1, prefix: '' },
  { share: 2, dataSources: 2, hubs: 2, prefix: 'more-' },
  { share: 2, dataSources: 2, hubs: 1, prefix: 'most-' },
];
/** Related records of the hub whose follow-up is measured at each registry size. */
const SIZE_CURVE_RELATED = Math.min(10_000, RECORDS / 50);

/** One step of the generator: how long writing takes, how long the derived state takes, and the generator's memory. */
async function generateStep(pool: Pool, step: (typeof STAGES)[number], seed: number) {
  let writtenAt = 0;
  const logger = { info: () => void (writtenAt = performance.now()) } as never;
  const t0 = performance.now();
  const records = (RECORDS * step.share) / 5;
  const { result, peakMb } = await peakRss({ generator: process.pid }, () =>
    seedRegistry(pool, { records, dataSources: step.dataSources, hubs: step.hubs, hubSize: Math.min(20_000, RECORDS / 50), seed, prefix: step.prefix }, logger),
  );
  return { records: result.records, relations: result.relations, writtenMs: writtenAt - t0, totalMs: ms(t0), peakRssMb: peakMb.generator! };
}

/**
 * The generator in its steps, and after each the follow-up throughput of a hub's deletion against
 * the same work as set-based SQL (another hub of the same size): throughput against registry size.
 */
async function generate(pool: Pool, registry: RegistryClient) {
  const steps: Awaited<ReturnType<typeof generateStep>>[] = [];
  const sizeCurve: { registryRecords: number; followUpRecordsPerSecond: number; setBasedRecordsPerSecond: number }[] = [];
  let registryRecords = 0;
  for (const [i, step] of STAGES.entries()) {
    steps.push(await generateStep(pool, step, i + 1));
    registryRecords += steps.at(-1)!.records;
    log(`registry of ${registryRecords} records: measuring the follow-up of ${SIZE_CURVE_RELATED} related records`);
    const [ours, limit] = await addHubs(pool, [SIZE_CURVE_RELATED, SIZE_CURVE_RELATED]);
    // From the answer, as the answer curve times it: set-based SQL is timed after its planning too.
    const out = await registry.deleteRecord(ours!.key);
    const t0 = performance.now();
    await registry.awaitDeletion(ours!.key, out.runId);
    const followUpRecordsPerSecond = Math.round(SIZE_CURVE_RELATED / (ms(t0) / 1000));
    const setBased = await setBasedFollowUp(pool, limit!.key);
    sizeCurve.push({ registryRecords, followUpRecordsPerSecond, setBasedRecordsPerSecond: setBased.recordsPerSecond });
  }
  const sum = (f: (step: (typeof steps)[number]) => number) => steps.reduce((n, s) => n + f(s), 0);
  const derivedSeconds = (sum((s) => s.totalMs) - sum((s) => s.writtenMs)) / 1000;
  return {
    generator: {
      records: sum((s) => s.records),
      relations: sum((s) => s.relations),
      writtenSeconds: r1(sum((s) => s.writtenMs) / 1000),
      derivedSeconds: r1(derivedSeconds),
      derivedRecordsPerSecond: Math.round(sum((s) => s.records) / derivedSeconds),
      totalSeconds: r1(sum((s) => s.totalMs) / 1000),
      peakRssMb: Math.max(...steps.map((s) => s.peakRssMb)),
      steps: steps.length,
    },
    sizeCurve,
  };
}

/**
 * The maintenance scan (HOURLY_REGISTRY_MAINTENANCE's: settled invalidations, then the marked
 * records) beside the same question asked of every record. The first scan meets the marks and
 * invalidations the bench's follow-ups left (it removes those of fresh records); the plan is of a later one.
 */
async function maintenanceScan(pool: Pool) {
  const count = async (sql: string) => Number((await pool.query<{ n: string }>(sql)).rows[0]!.n);
  const timed = async <T>(run: () => Promise<T>) => {
    const t0 = performance.now();
    const out = await run();
    return { ms: ms(t0), out };
  };
  const marks = await count('SELECT count(*) AS n FROM derived_stale_marks');
  const invalidated = await count('SELECT count(DISTINCT record_id) AS n FROM derived_invalidations');
  const scans = [];
  for (let i = 0; i < 3; i++) scans.push(await timed(() => scanMarkedRecords(pool)));
  const everywhere = [];
  for (let i = 0; i < 3; i++) everywhere.push(await timed(() => pool.query(STALE_RECORDS_EVERYWHERE)));
  const plan = (await pool.query<{ 'QUERY PLAN': string }>(`EXPLAIN (ANALYZE, BUFFERS) ${SCAN_MARKED_RECORDS}`)).rows.map((r) => r['QUERY PLAN']).join('\n');
  return {
    marksBefore: marks,
    invalidatedBefore: invalidated,
    firstMs: r1(scans[0]!.ms),
    laterMs: p50(scans.slice(1).map((t) => t.ms)),
    marksAfter: await count('SELECT count(*) AS n FROM derived_stale_marks'),
    needingWork: scans[0]!.out.stale.length + scans[0]!.out.uncachedIds.length,
    everyRecordMs: p50(everywhere.map((t) => t.ms)),
    staleEverywhere: everywhere[0]!.out.rowCount ?? 0,
    plan,
  };
}

/** Record searches as the page makes them (50 a page, with the total), five times each. */
async function searches(pool: Pool) {
  const queries = {
    'a common word ("coral")': { q: 'coral' },
    'two words ("soil carbon")': { q: 'soil carbon' },
    'a person ("Nguyen")': { q: 'Nguyen' },
    'a key': { q: 'uni-melbourne/collection/000123' },
    'a data source, no words': { dataSourceKey: 'uni-melbourne' },
    'everything, no filter': {},
  };
  const out: Record<string, { p50Ms: number; total: number }> = {};
  for (const [name, filter] of Object.entries(queries)) {
    const times: number[] = [];
    let total = 0;
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      total = (await searchRecords(pool, { ...filter, limit: 50, offset: 0 })).total;
      times.push(ms(t0));
    }
    out[name] = { p50Ms: p50(times), total };
  }
  return out;
}

/** A page of the task list, and the tasks naming a record key, with 200 tasks waiting. */
async function taskList(tasks: TaskClient, keys: string[]) {
  for (let i = 0; i < 200; i++) {
    await tasks.addNewTask('INDEX_RECORDS', { registryObjectKeys: [keys[i % keys.length]!], dataSourceKey: `scale-${i}`, scheduledFor: '1 hour' });
  }
  const time = async (read: () => Promise<unknown>) => {
    const times: number[] = [];
    for (let i = 0; i < 10; i++) {
      const t0 = performance.now();
      await read();
      times.push(ms(t0));
    }
    return p50(times);
  };
  return { pageP50Ms: await time(() => tasks.listTasks({ pageSize: 50 })), byRecordKeyP50Ms: await time(() => tasks.listTasks({ recordKey: keys[0]! })) };
}

/** Activity hubs of the given sizes, each with outbound relations to that many collections, and their derived state. */
async function addHubs(pool: Pool, sizes: number[]): Promise<{ key: string; related: number }[]> {
  const hubs = await withTransaction(pool, async (tx) => {
    const ds = (await tx.query<{ id: number; key: string }>('SELECT id, key FROM data_sources ORDER BY id LIMIT 1')).rows[0]!;
    const out: { key: string; related: number; id: number }[] = [];
    for (const [i, size] of sizes.entries()) {
      const key = `${ds.key}/activity/scale-hub-${size}-${i}`;
      const { rows } = await tx.query<{ id: number }>(
        `INSERT INTO registry_objects (key, class, type, group_name, data_source_id, status, title, description)
         VALUES ($1, 'activity', 'project', $2, $3, 'PUBLISHED', $4, $5) RETURNING id`,
        [key, ds.key, ds.id, `Scale programme ${i}`, `A programme related to ${size} collections.`],
      );
      await tx.query(
        `INSERT INTO relations (from_id, to_key, relation_type)
         SELECT $1, key, 'hasOutput' FROM registry_objects WHERE class = 'collection' ORDER BY md5(key || $2) LIMIT $3`,
        [rows[0]!.id, String(i), size],
      );
      out.push({ key, related: size, id: rows[0]!.id });
    }
    return out;
  });
  const ids = await pool.query<{ id: number }>(
    `SELECT DISTINCT ro.id FROM relations r JOIN registry_objects ro ON ro.key = r.to_key WHERE r.from_id = ANY($1::bigint[])
     UNION SELECT unnest($1::bigint[]) ORDER BY 1`,
    [hubs.map((h) => h.id)],
  );
  await rebuildDerived(
    pool,
    ids.rows.map((r) => r.id),
  );
  return hubs.map(({ key, related }) => ({ key, related }));
}

/** Deletes each hub (sizes interleaved), timing the answer and the follow-up until its commit. */
async function answerCurve(pool: Pool, registry: RegistryClient, client: Client) {
  const largest = CURVE.at(-1)!;
  const hubs = await addHubs(pool, [...Array.from({ length: SAMPLES }, () => CURVE).flat(), ...Array.from({ length: SAMPLES }, () => 10), largest]);
  const ours = hubs.slice(0, CURVE.length * SAMPLES);
  const bare = hubs.slice(CURVE.length * SAMPLES, -1);
  const answers: Record<number, number[]> = Object.fromEntries(CURVE.map((n) => [n, []]));
  const followUps: Record<number, number[]> = Object.fromEntries(CURVE.map((n) => [n, []]));
  for (const hub of ours) {
    log(`deleting a hub with ${hub.related} related records`);
    const t0 = performance.now();
    const out = await registry.deleteRecord(hub.key);
    answers[hub.related]!.push(ms(t0));
    const t1 = performance.now();
    await registry.awaitDeletion(hub.key, out.runId);
    followUps[hub.related]!.push(hub.related / (ms(t1) / 1000));
  }
  const handOff: number[] = [];
  for (const hub of bare) {
    const t0 = performance.now();
    await client.workflow.execute('bareDeleteWorkflow', { taskQueue: BENCH_QUEUE, workflowId: `scale-bare:${hub.key}`, args: [hub.key] });
    handOff.push(ms(t0));
  }
  log('the same follow-up as set-based SQL, one transaction');
  const setBased = await setBasedFollowUp(pool, hubs.at(-1)!.key);
  const curve = CURVE.map((n) => ({
    related: n,
    answerP50Ms: p50(answers[n]!),
    answerMaxMs: r1(Math.max(...answers[n]!)),
    followUpRecordsPerSecond: Math.round(pct(followUps[n]!, 50)),
  }));
  const throughputRatio = Math.round((curve.at(-1)!.followUpRecordsPerSecond / setBased.recordsPerSecond) * 100) / 100;
  return {
    samples: SAMPLES,
    curve,
    leastDurableHandOffP50Ms: p50(handOff),
    flatness: r1(curve.at(-1)!.answerP50Ms / curve[0]!.answerP50Ms),
    setBasedFollowUp: { ...setBased, oursOverSetBased: throughputRatio },
  };
}

/** A small data source of its own: collections each related to one party, with their derived state. */
async function smallDataSource(pool: Pool, pairs: number): Promise<string[]> {
  const ids = await withTransaction(pool, async (tx) => {
    const ds = (await tx.query<{ id: number }>("INSERT INTO data_sources (key, title) VALUES ('small-ds', 'A small data source') RETURNING id")).rows[0]!.id;
    const { rows } = await tx.query<{ id: number }>(
      `INSERT INTO registry_objects (key, class, type, group_name, data_source_id, status, title, description)
       SELECT 'small-ds/' || c::text || '/' || i, c, 'dataset', 'Small', $1, 'PUBLISHED', 'Small ' || c::text || ' ' || i, 'A record of a small data source.'
         FROM generate_series(1, $2) AS i, unnest(ARRAY['collection', 'party']::record_class[]) AS c RETURNING id`,
      [ds, pairs],
    );
    await tx.query(
      `INSERT INTO relations (from_id, to_key, relation_type)
       SELECT ro.id, 'small-ds/party/' || split_part(ro.key, '/', 3), 'hasCollector' FROM registry_objects ro
        WHERE ro.data_source_id = $1 AND ro.class = 'collection'`,
      [ds],
    );
    return rows.map((r) => r.id);
  });
  await rebuildDerived(pool, ids);
  return Array.from({ length: pairs }, (_, i) => `small-ds/collection/${i + 1}`);
}

/** Each key deleted in turn; milliseconds from the call until its follow-up has committed. */
async function deletionsUntilConsistent(registry: RegistryClient, keys: string[]): Promise<number[]> {
  const times: number[] = [];
  for (const key of keys) {
    const t0 = performance.now();
    const out = await registry.deleteRecord(key);
    await registry.awaitDeletion(key, out.runId);
    times.push(ms(t0));
  }
  return times;
}

/**
 * Goal 7: a deletion in a small data source, from the call until its follow-up commits, on an
 * idle system and while SYNC_DATASOURCE runs over the largest data source (only the samples
 * taken while the sync's chain was still working count).
 */
async function fairness(pool: Pool, registry: RegistryClient, tasks: TaskClient) {
  const keys = await smallDataSource(pool, 2 * FAIRNESS_SAMPLES);
  const idle = await deletionsUntilConsistent(registry, keys.slice(0, FAIRNESS_SAMPLES));
  const largest = (await dataSourcesBySize(pool)).at(-1)!;
  log(`fairness: syncing ${largest.key} (${largest.records} records) while deleting in small-ds`);
  const syncId = await tasks.addNewTask('SYNC_DATASOURCE', { dataSourceKey: largest.key });
  const chain = await untilTask(tasks, syncId, (t) => t.status === 'COMPLETED' && (t.output as { tasks: string[] }).tasks);
  // Started, or already past it (a small data source's check may start and end between two looks).
  await untilTask(tasks, chain[0]!, (t) => t.status !== 'WAITING');
  const syncing = async () => (await Promise.all(chain.map((id) => tasks.getTask(id)))).some((t) => t.status === 'WAITING' || t.status === 'STARTED');
  const busy: number[] = [];
  for (const key of keys.slice(FAIRNESS_SAMPLES)) {
    const [time] = await deletionsUntilConsistent(registry, [key]);
    if (await syncing()) busy.push(time!);
  }
  for (const id of chain) await tasks.cancelTask(id).catch(() => undefined);
  return {
    syncedDataSource: largest.key,
    syncedRecords: largest.records,
    idleP50Ms: p50(idle),
    busyP50Ms: p50(busy),
    busySamples: busy.length,
    busyOverIdle: busy.length ? r1(pct(busy, 50) / pct(idle, 50)) : undefined,
  };
}

/**
 * Goal 3: SYNC_DATASOURCE of a large data source (not the one the fairness run synced), from the
 * call until its chain (quality check -> cache -> index) has completed, against the same work as
 * set-based SQL in one transaction. The registry is fresh: both sides compare and change nothing.
 */
async function syncThroughput(pool: Pool, tasks: TaskClient) {
  const ds = (await dataSourcesBySize(pool)).at(-2)!;
  log(`SYNC_DATASOURCE of ${ds.key} (${ds.records} records)`);
  const t0 = performance.now();
  const syncId = await tasks.addNewTask('SYNC_DATASOURCE', { dataSourceKey: ds.key });
  const chain = await untilTask(tasks, syncId, (t) => t.status === 'COMPLETED' && (t.output as { tasks: string[] }).tasks);
  for (const id of chain) {
    const end = await untilTask(tasks, id, (t) => ['COMPLETED', 'FAILED', 'CANCELLED'].includes(t.status) && t.status);
    if (end !== 'COMPLETED') throw new Error(`task ${id} of the sync ended ${end}`);
  }
  const syncSeconds = ms(t0) / 1000;
  log('the same work as set-based SQL, one transaction');
  const setBased = await withTransaction(pool, async (tx) => setBasedRecompute(tx, await idsForDataSource(tx, ds.key)));
  return {
    dataSource: ds.key,
    records: ds.records,
    syncSeconds: r1(syncSeconds),
    syncRecordsPerSecond: Math.round(ds.records / syncSeconds),
    setBasedSeconds: r1(setBased.seconds),
    oursOverSetBased: Math.round((setBased.seconds / syncSeconds) * 100) / 100,
  };
}

/** Polls a task (every 200 ms, for at most 10 minutes) until `ready` returns something. */
async function untilTask<T>(tasks: TaskClient, taskId: string, ready: (t: Awaited<ReturnType<TaskClient['getTask']>>) => T | false | undefined): Promise<T> {
  for (const deadline = Date.now() + 600_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 200))) {
    const found = ready(await tasks.getTask(taskId));
    if (found) return found;
  }
  throw new Error(`task ${taskId} did not reach the state the bench waits for`);
}

// ---------- main ----------
const db = await database();
await migrate(db.url);
const pool = createPool(db.url, { max: 20 });
const results: Record<string, unknown> = {
  date: new Date().toISOString(),
  records: RECORDS,
  machine: { cpus: os.cpus().length, memoryGb: Math.round(os.totalmem() / 2 ** 30), node: process.version },
};
const server = await startBenchDevServer();
const worker = await startRegistryBenchWorker(server.address, db.url, TASK_QUEUE, BENCH_QUEUE);
const client = new Client({ connection: await Connection.connect({ address: server.address }) });
const registry = new RegistryClient(client, { taskQueue: TASK_QUEUE, followUp: FOLLOW_UP, pool });
try {
  log(`generating ${RECORDS} records in ${STAGES.length} steps`);
  const grown = await generate(pool, registry);
  results.generator = grown.generator;
  results.sizeCurve = grown.sizeCurve;
  log(`generator: ${JSON.stringify(results.generator)}`);
  log(`follow-up by registry size: ${JSON.stringify(results.sizeCurve)}`);
  const scan = await maintenanceScan(pool);
  results.maintenanceScan = { ...scan, plan: undefined };
  log(
    `maintenance scan of ${scan.marksBefore} marked records: ${scan.firstMs} ms (then ${scan.laterMs} ms, ${scan.marksAfter} marks left), ` +
      `${scan.needingWork} needing work; every record compared: ${scan.everyRecordMs} ms, ${scan.staleEverywhere} stale`,
  );
  results.search = await searches(pool);
  log(`search: ${JSON.stringify(results.search)}`);
  const keys = (await pool.query<{ key: string }>('SELECT key FROM registry_objects ORDER BY id LIMIT 50')).rows.map((r) => r.key);
  const tasks = new TaskClient(client, TASK_QUEUE, { pool });
  results.taskList = await taskList(tasks, keys);
  log(`task list: ${JSON.stringify(results.taskList)}`);
  const { result: curve, peakMb } = await peakRss({ worker: worker.registry.pid }, () => answerCurve(pool, registry, client));
  results.answerCurve = { ...curve, workerPeakRssMb: peakMb.worker };
  log(`answer curve: ${JSON.stringify(results.answerCurve)}`);
  results.fairness = await fairness(pool, registry, tasks);
  log(`fairness: ${JSON.stringify(results.fairness)}`);
  results.sync = await syncThroughput(pool, tasks);
  log(`sync: ${JSON.stringify(results.sync)}`);
  // Runs smaller than the national size are trials, named (and git-ignored) as such.
  const stamp = `${RECORDS < 1_000_000 ? 'quick-' : ''}${new Date().toISOString().replace(/[:.]/g, '-')}`;
  const dir = path.join(ROOT, 'bench', 'results');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(
    path.join(dir, `scale-${stamp}.json`),
    `${JSON.stringify({ ...results, totalSeconds: Math.round((Date.now() - started) / 1000) }, null, 2)}\n`,
  );
  fs.writeFileSync(path.join(dir, `scale-${stamp}-stale-scan-plan.txt`), `${scan.plan}\n`);
  fs.writeFileSync(path.join(dir, `scale-${stamp}.svg`), answerCurveSvg(curve.curve, curve.leastDurableHandOffP50Ms, RECORDS));
  fs.writeFileSync(path.join(dir, `scale-${stamp}-size.svg`), sizeCurveSvg(grown.sizeCurve, SIZE_CURVE_RELATED));
  log(`figures, plan and chart written to bench/results/scale-${stamp}.*`);
} finally {
  worker.stop();
  await client.connection.close();
  await pool.end();
  await server.stop();
  await db.stop();
}
process.exit(0);
