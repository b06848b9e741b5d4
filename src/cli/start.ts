/** `taskmgr start` (`npm start`): the whole system on this machine, on embedded defaults. */
import path from 'node:path';
import type { Config } from '../config.ts';
import { loadConfig } from '../config.ts';
import { RegistryClient } from '../client/registry.ts';
import { TaskClient } from '../client/task-client.ts';
import { createPool, endPool, type Pool } from '../db/pool.ts';
import { migrate } from '../db/migrate.ts';
import { createLogger } from '../log.ts';
import { isRegistryEmpty, seedRegistry } from '../registry/seed.ts';
import { startStack } from '../stack.ts';
import { startAdminServer } from '../http/server.ts';
import { printable, shellQuote, stopSignal } from './common.ts';
import { ensureMaintenanceTask } from './maintenance-task.ts';
import { connectWorker, createRegistryWorker, installRuntime } from '../worker.ts';

/** Shows the demo's hub records: the deletions worth watching. */
async function demoHints(pool: Pool): Promise<{ key: string; title: string; related: number }[]> {
  const { rows } = await pool.query<{ key: string; title: string; related: number }>(
    `SELECT ro.key, ro.title, count(DISTINCT rr.related_id)::int AS related
       FROM registry_objects ro, related_records(ro.id, ro.key) rr
      WHERE ro.key LIKE '%/hub-%'
      GROUP BY ro.key, ro.title ORDER BY related DESC LIMIT 3`,
  );
  return rows;
}

/** Starts PostgreSQL, Temporal, a worker and the page; seeds an empty registry; runs until Ctrl-C. */
export async function runStart(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger(config.logLevel);
  installRuntime(logger, config.logLevel, config.metricsAddress);
  const stack = await startStack(config, logger);
  let pool: Pool | undefined;
  try {
    await migrate(stack.databaseUrl, logger);
    pool = createPool(stack.databaseUrl, { logger });
    if (await isRegistryEmpty(pool)) {
      logger.info(config.seed, 'empty registry: generating demo records');
      await seedRegistry(pool, { records: config.seed.records, dataSources: config.seed.dataSources }, logger);
    }
    const temporal = await connectWorker(config, logger, stack.temporalAddress);
    const { connection, client, namespace, address } = temporal;
    const worker = await createRegistryWorker({ config, pool, connection, client, namespace, logger });
    const running = worker.run();
    // After run(): adding a task waits for its admission, which a polling worker carries out.
    const tasks = new TaskClient(client, config.temporal.taskQueue, { pool, workerWaitMs: config.workerWaitMs });
    await ensureMaintenanceTask(tasks, config, logger);
    const web = await startAdminServer({
      config,
      pool,
      tasks,
      registry: new RegistryClient(client, { taskQueue: config.temporal.taskQueue, pool }),
      logger,
      temporalUiUrl: stack.uiUrl ?? config.temporal.uiUrl,
    });
    console.log(startBanner(config, stack, { address, namespace }, web, await demoHints(pool)));
    await Promise.race([running, stopSignal(logger)]);
    await web.close();
    if (worker.getState() === 'RUNNING') worker.shutdown();
    await running;
    await temporal.close();
  } finally {
    if (pool) await endPool(pool, logger);
    await stack.stop();
    logger.info('stopped');
  }
}

/** What runs where, and the deletions worth watching. */
function startBanner(
  config: Config,
  stack: Awaited<ReturnType<typeof startStack>>,
  { address, namespace }: { address: string; namespace: string },
  web: Awaited<ReturnType<typeof startAdminServer>>,
  hubs: { key: string; title: string; related: number }[],
): string {
  const addressEnv = stack.temporalAddress && stack.temporalAddress !== '127.0.0.1:7233' ? `TEMPORAL_ADDRESS=${stack.temporalAddress} ` : '';
  return [
    '',
    'registry-taskmgr is running.',
    `  Temporal:     ${address} (namespace ${namespace}, task queue ${config.temporal.taskQueue})`,
    `  Task manager: ${web.url}/  (user ${config.http.adminUser}${web.credentials.generatedPasswordFile ? `, password in ${web.credentials.generatedPasswordFile}` : ', password from ADMIN_PASSWORD'})`,
    stack.uiUrl ? `  Temporal UI:  ${stack.uiUrl}/namespaces/${namespace}/workflows` : '',
    stack.temporalHttpUrl ? `  Temporal HTTP API: ${stack.temporalHttpUrl}/api/v1/namespaces/${namespace}/workflows (plain JSON, see the README)` : '',
    `  PostgreSQL:   ${stack.embeddedPostgres ? `embedded, data in ${path.join(config.dataDir, 'pg')}` : 'DATABASE_URL'}`,
    config.metricsAddress ? `  Metrics:      http://${config.metricsAddress}/metrics (Prometheus; the worker's)` : '',
    '',
    'Delete a record and watch its related records being rechecked, reindexed and re-cached:',
    ...hubs.map((h) => `  ${addressEnv}npx taskmgr delete-record ${shellQuote(h.key)} --wait     # ${printable(h.title)}: ${h.related} related records`),
    `  ${addressEnv}npm run temporal -- workflow list --query "TaskMethod='DELETE_RECORD'"`,
    '',
    'Ctrl-C stops everything; the next start reuses the data.',
  ]
    .filter((l) => l !== '')
    .join('\n');
}
