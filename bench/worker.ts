/**
 * The benchmark's worker process: the registry worker (real task modules plus bench/tasks) and a
 * worker for the baseline workflows, so that its memory can be measured apart from the driver.
 * Env: TEMPORAL_ADDRESS, DATABASE_URL, TEMPORAL_TASK_QUEUE, BENCH_TASK_QUEUE.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { loadConfig } from '../src/config.ts';
import { createPool } from '../src/db/pool.ts';
import { createLogger } from '../src/log.ts';
import { loadTasks, TASKS_DIR } from '../src/taskmgr/discovery.ts';
import { createRegistryWorker, installRuntime } from '../src/worker.ts';
import { createBenchActivities } from './activities.ts';

// No metrics endpoint: the figures stay comparable with earlier runs.
const config = loadConfig({ ...process.env, METRICS_ADDRESS: process.env.METRICS_ADDRESS ?? 'off' });
const address = config.temporal.address!;
const logger = createLogger('warn');
installRuntime(logger, 'warn');
const real = await loadTasks(TASKS_DIR);
const bench = await loadTasks(path.join(import.meta.dirname, 'tasks'));
const tasks = {
  files: { available: [...real.files.available, ...bench.files.available].sort(), disabled: real.files.disabled },
  definitions: new Map([...real.definitions, ...bench.definitions]),
};
const pool = createPool(config.databaseUrl!, { logger, max: 20 });
const connection = await NativeConnection.connect({ address });
const client = new Client({ connection: await Connection.connect({ address }) });
const registryWorker = await createRegistryWorker({ config, pool, connection, client, namespace: 'default', tasks });
const baselineWorker = await Worker.create({
  connection,
  taskQueue: process.env.BENCH_TASK_QUEUE!,
  workflowsPath: fileURLToPath(new URL('./workflows.ts', import.meta.url)),
  activities: createBenchActivities(pool),
});
console.log('worker ready');
await Promise.all([registryWorker.run(), baselineWorker.run()]);
await pool.end();
