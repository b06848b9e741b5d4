/**
 * The benchmark's worker process: the registry worker (real task modules plus bench/tasks) and a
 * worker for the baseline workflows, so that its memory can be measured apart from the driver.
 * Env: TEMPORAL_ADDRESS, DATABASE_URL, TEMPORAL_TASK_QUEUE, BENCH_TASK_QUEUE, BENCH_WORKER_ROLE (registry, baselines or both),
 * BENCH_WORKER_MEMORY_LOG (a file to append the process's memory to, each second).
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { loadConfig } from '../src/config.ts';
import { createPool } from '../src/db/pool.ts';
import { createLogger } from '../src/log.ts';
import { loadTasks, TASKS_DIR } from '../src/taskmgr/discovery.ts';
import { createRegistryWorker, installRuntime } from '../src/worker.ts';
import { bundleWorkflowsApart, removeBundle } from '../src/workflow-bundle.ts';
import { createBenchActivities } from './activities.ts';

// No metrics endpoint: the figures stay comparable with earlier runs.
const config = loadConfig({ ...process.env, METRICS_ADDRESS: process.env.METRICS_ADDRESS ?? 'off' });
const address = config.temporal.address!;
const logger = createLogger('warn');
installRuntime(logger, 'warn');
/** The project's task modules and the bench's own (bench/tasks), for the registry worker. */
async function benchTasks() {
  const real = await loadTasks(TASKS_DIR);
  const bench = await loadTasks(path.join(import.meta.dirname, 'tasks'));
  return {
    files: { available: [...real.files.available, ...bench.files.available].sort(), disabled: real.files.disabled },
    definitions: new Map([...real.definitions, ...bench.definitions]),
  };
}
const pool = createPool(config.databaseUrl!, { logger, max: 20 });
const connection = await NativeConnection.connect({ address });
const client = new Client({ connection: await Connection.connect({ address }) });
// One process per role in npm run bench (the registry's worker's memory is measured alone); both in the cluster bench.
const role = process.env.BENCH_WORKER_ROLE ?? 'both';
const running: Promise<void>[] = [];
if (role !== 'baselines') {
  const registryWorker = await createRegistryWorker({ config, pool, connection, client, namespace: 'default', tasks: await benchTasks() });
  running.push(registryWorker.run());
}
if (role !== 'registry') {
  // Bundled apart like the registry's workflows: the process's memory is the workers', not webpack's.
  const baselineBundle = await bundleWorkflowsApart(fileURLToPath(new URL('./workflows.ts', import.meta.url)));
  const baselineWorker = await Worker.create({
    connection,
    taskQueue: process.env.BENCH_TASK_QUEUE!,
    workflowBundle: baselineBundle,
    activities: createBenchActivities(pool),
  }).finally(() => removeBundle(baselineBundle));
  running.push(baselineWorker.run());
}
// For tuning memory: where the process's memory is (V8's heap, buffers, the rest: the SDK's native core), each second.
const memoryLog = process.env.BENCH_WORKER_MEMORY_LOG;
if (memoryLog) setInterval(() => fs.appendFileSync(memoryLog, `${JSON.stringify({ role, at: Date.now(), ...process.memoryUsage() })}\n`), 1000).unref();
console.log('worker ready');
await Promise.all(running);
await pool.end();
