/** `taskmgr`: the command-line tool (commander). `npm start` is `taskmgr start`. */
import path from 'node:path';
import { Command, CommanderError } from 'commander';
import { ConfigError, loadConfig, type Config } from '../config.ts';
import { RegistryClient } from '../client/registry.ts';
import { TaskClient } from '../client/task-client.ts';
import { createPool, endPool, type Pool } from '../db/pool.ts';
import { migrate } from '../db/migrate.ts';
import { startEmbeddedPostgres } from '../dev/embedded-postgres.ts';
import { createLogger, type Logger } from '../log.ts';
import { seedRegistry, type SeedOptions } from '../registry/seed.ts';
import { refreshDerived } from '../registry/derived.ts';
import { listQuarantined, retryQuarantined } from '../registry/quarantine.ts';
import { UserError } from '../user-error.ts';
import { hashPassword } from '../http/password-hash.ts';
import { addTaskCommands } from './task-commands.ts';
import { runningDatabaseUrl } from './database.ts';
import { intOption, printable, stopSignal } from './common.ts';
import { addClusterCommand } from './cluster.ts';
import { addReplayCheckCommand } from './replay-check.ts';
import { credentialsRefused, temporalTarget } from '../client/connection.ts';
import { ensureMaintenanceTask } from './maintenance-task.ts';
import type { DeletionOutcome } from '../shared.ts';

/** The database for a one-off command: DATABASE_URL, else the embedded one (started if not running). */
async function openDatabase(config: Config, logger: Logger): Promise<{ pool: Pool; url: string; close(): Promise<void> }> {
  let url = runningDatabaseUrl(config);
  let stopEmbedded: (() => Promise<void>) | undefined;
  if (!url) {
    const db = await startEmbeddedPostgres({ dir: path.join(config.dataDir, 'pg'), port: config.embeddedPgPort, logger });
    url = db.url;
    stopEmbedded = () => db.stop();
  }
  const pool = createPool(url, { logger });
  return {
    pool,
    url,
    async close() {
      await pool.end();
      await stopEmbedded?.();
    },
  };
}

export function buildProgram(): Command {
  const program = new Command('taskmgr')
    .description('Background task manager for research-data registries (Temporal + PostgreSQL)')
    .showHelpAfterError()
    .exitOverride();

  addStartCommand(program);
  addWorkerCommand(program);
  addServeCommand(program);
  addHealthCommand(program);
  addMigrateCommand(program);
  addSeedCommand(program);
  addDeleteRecordCommand(program);
  addQuarantineCommands(program);
  addHashPasswordCommand(program);
  addTaskCommands(program);
  addClusterCommand(program);
  addReplayCheckCommand(program);
  return program;
}

function addStartCommand(program: Command) {
  program
    .command('start')
    .description('run everything on this machine: PostgreSQL, the Temporal dev server and Web UI, a worker and the task manager page')
    // The worker, the page and the Temporal SDK's native runtime load only for the commands that run them.
    .action(async () => (await import('./start.ts')).runStart());
}

function addWorkerCommand(program: Command) {
  program
    .command('worker')
    .description('run a worker against DATABASE_URL and TEMPORAL_ADDRESS (production; scale by running more)')
    .action(async () => {
      const config = loadConfig();
      if (!config.databaseUrl) throw new ConfigError('DATABASE_URL must be set for `taskmgr worker` (use `taskmgr start` for the embedded database)');
      const logger = createLogger(config.logLevel);
      const { connectWorker, createRegistryWorker, installRuntime } = await import('../worker.ts');
      installRuntime(logger, config.logLevel, config.metricsAddress);
      await migrate(config.databaseUrl, logger);
      const pool = createPool(config.databaseUrl, { logger });
      const temporal = await connectWorker(config, logger).catch(async (err: unknown) => {
        await pool.end();
        throw err;
      });
      const { connection, client, namespace, address } = temporal;
      try {
        const worker = await createRegistryWorker({ config, pool, connection, client, namespace, logger });
        const running = worker.run(); // returns after SIGINT/SIGTERM, once in-flight tasks finish
        await ensureMaintenanceTask(new TaskClient(client, config.temporal.taskQueue, { pool }), config, logger).catch(async (err: unknown) => {
          worker.shutdown();
          await running.catch(() => undefined);
          throw err;
        });
        logger.info({ address, namespace, taskQueue: config.temporal.taskQueue }, 'worker running');
        await running;
      } finally {
        // Also when the server refuses us: open connections would keep the process alive. After a
        // forced stop the SDK still holds the connection ("Worker still in use"): said, not thrown
        // over the reason the worker stopped.
        await temporal.close().catch((err: unknown) => logger.warn({ err: (err as Error).message }, 'closing the Temporal connection'));
        await endPool(pool, logger);
      }
    });
}

function addServeCommand(program: Command) {
  program
    .command('serve')
    .description('run the Background Task Manager page and HTTP API against DATABASE_URL and TEMPORAL_ADDRESS')
    .action(async () => {
      const config = loadConfig();
      if (!config.databaseUrl) throw new ConfigError('DATABASE_URL must be set for `taskmgr serve` (`taskmgr start` serves the page too)');
      const logger = createLogger(config.logLevel);
      const pool = createPool(config.databaseUrl, { logger });
      const registry = await RegistryClient.connect(config, undefined, pool);
      const tasks = new TaskClient(registry.client, config.temporal.taskQueue, { pool, workerWaitMs: config.workerWaitMs });
      const { startAdminServer } = await import('../http/server.ts');
      const web = await startAdminServer({ config, pool, tasks, registry, logger, temporalUiUrl: config.temporal.uiUrl });
      logger.info({ url: web.url }, 'Background Task Manager listening');
      await stopSignal(logger);
      await web.close();
      await registry.close();
      await pool.end();
    });
}

function addHealthCommand(program: Command) {
  program
    .command('health')
    .description('exit 0 when PostgreSQL (DATABASE_URL) and Temporal answer; for container health checks')
    .action(async () => {
      const config = loadConfig();
      if (!config.databaseUrl) throw new ConfigError('DATABASE_URL must be set for `taskmgr health`');
      const pool = createPool(config.databaseUrl, { max: 1 });
      try {
        await pool.query('SELECT 1 FROM pgmigrations LIMIT 1');
      } catch (err) {
        throw new Error(`PostgreSQL: ${(err as Error).message}`, { cause: err });
      } finally {
        await pool.end();
      }
      const client = await RegistryClient.connect(config);
      try {
        await client.client.workflowService.getSystemInfo({});
      } finally {
        await client.close();
      }
      console.log('ok');
    });
}

function addMigrateCommand(program: Command) {
  program
    .command('migrate')
    .description('apply pending database migrations')
    .action(async () => {
      const config = loadConfig();
      const logger = createLogger(config.logLevel);
      const db = await openDatabase(config, logger);
      try {
        const applied = await migrate(db.url, logger);
        console.log(applied.length ? `applied: ${applied.join(', ')}` : 'the schema is up to date');
      } finally {
        await db.close();
      }
    });
}

/** The largest registry the generator has been measured at (`npm run bench -- --scale`); memory grows with it. */
const MAX_SEED_RECORDS = 1_000_000;

function addSeedCommand(program: Command) {
  program
    .command('seed')
    .description('generate a demo registry (deterministic for a given --seed)')
    .option('--records <n>', 'records to generate (at most the 1,000,000 measured: 39 s to write, 0.8 GB)', intOption('--records', 1, MAX_SEED_RECORDS), 20_000)
    .option('--data-sources <n>', 'data sources', intOption('--data-sources', 1, 100), 5)
    .option('--hubs <n>', 'hub records with many related collections', intOption('--hubs', 0, 100))
    .option('--hub-size <n>', 'related collections per hub', intOption('--hub-size', 1, 1_000_000))
    .option('--seed <n>', 'random seed', intOption('--seed', 0, 2 ** 31), 42)
    .option('--prefix <text>', 'prefix for data-source keys', '')
    .action(async (opts: SeedOptions & { prefix: string }) => {
      const config = loadConfig();
      const logger = createLogger(config.logLevel);
      const db = await openDatabase(config, logger);
      try {
        await migrate(db.url, logger);
        const summary = await seedRegistry(db.pool, opts, logger);
        console.log(JSON.stringify(summary, null, 2));
      } finally {
        await db.close();
      }
    });
}

function addDeleteRecordCommand(program: Command) {
  program
    .command('delete-record')
    .description('delete a record; its related records are rechecked, reindexed and re-cached in the background')
    .argument('<key>', 'registry object key')
    .option('--wait', 'wait for the follow-up and print what changed')
    .option('--json', 'print JSON')
    .action(async (key: string, opts: { wait?: boolean; json?: boolean }) => {
      const config = loadConfig();
      const databaseUrl = runningDatabaseUrl(config);
      const pool = databaseUrl ? createPool(databaseUrl, { max: 2 }) : undefined;
      const client = await RegistryClient.connect(config, undefined, pool);
      try {
        const started = Date.now();
        const outcome = await client.deleteRecord(key);
        const answeredMs = Date.now() - started;
        if (!opts.wait) {
          console.log(
            opts.json
              ? JSON.stringify({ ...outcome, answeredMs })
              : `deleted ${key} in ${answeredMs} ms; ${relatedText(outcome)} being updated (workflow ${outcome.workflowId})`,
          );
          return;
        }
        if (!opts.json) console.log(`deleted ${key} in ${answeredMs} ms; waiting for its related records to be updated...`);
        const result = await client.awaitDeletion(key, outcome.runId);
        const totalMs = Date.now() - started;
        if (opts.json) {
          console.log(JSON.stringify({ ...result, answeredMs, totalMs }));
        } else {
          const changes =
            Object.entries(result.qualityChanges)
              .map(([c, n]) => `${n} records ${c}`)
              .join(', ') || 'none';
          console.log(
            `follow-up of ${result.affected} related records done in ${totalMs} ms: quality level changes: ${changes}; index entries rewritten: ${result.reindexed}; cache entries rewritten: ${result.recached}`,
          );
        }
      } finally {
        await client.close();
        await pool?.end();
      }
    });
}

function addHashPasswordCommand(program: Command) {
  program
    .command('hash-password')
    .description('read a password on standard input and print its scrypt hash, for ADMIN_PASSWORD / VIEWER_PASSWORD')
    .action(async () => {
      const chunks: Buffer[] = [];
      for await (const c of process.stdin) chunks.push(c as Buffer);
      const password = Buffer.concat(chunks)
        .toString('utf8')
        .replace(/\r?\n$/, '');
      if (password.length < 12) throw new ConfigError(`the password must be at least 12 characters (got ${password.length})`);
      console.log(hashPassword(password));
    });
}

/** `taskmgr quarantine`: records whose derived state PostgreSQL refused, and retrying them after a fix. */
function addQuarantineCommands(program: Command) {
  const quarantine = program.command('quarantine').description('list records in quarantine (PostgreSQL refused their derived state)');
  quarantine
    .option('--data-source <key>', 'only this data source')
    .option('--json', 'print JSON')
    .action(async (opts: { dataSource?: string; json?: boolean }) => {
      const config = loadConfig();
      const db = await openDatabase(config, createLogger(config.logLevel));
      try {
        const { records, total } = await listQuarantined(db.pool, { dataSourceKey: opts.dataSource, limit: 1000 });
        if (opts.json) return console.log(JSON.stringify({ total, records }, null, 2));
        if (total === 0) return console.log('no record is in quarantine');
        console.log(`${total} record${total === 1 ? '' : 's'} in quarantine${total > records.length ? ` (the newest ${records.length} shown)` : ''}:`);
        for (const r of records)
          console.log(
            `  ${printable(r.recordKey)}  [${r.dataSourceKey ?? '?'}]  ${r.attempts} attempt${r.attempts === 1 ? '' : 's'}, last ${r.lastTriedAt}\n      ${printable(r.error)}`,
          );
        console.log('After fixing them: taskmgr quarantine retry [KEY...]');
      } finally {
        await db.close();
      }
    });
  quarantine
    .command('retry')
    .description('try quarantined records again (all, or the given keys); those that go through leave the quarantine')
    .argument('[keys...]', 'record keys (default: all)')
    .action(async (keys: string[]) => {
      const config = loadConfig();
      const db = await openDatabase(config, createLogger(config.logLevel));
      try {
        const r = await retryQuarantined(db.pool, refreshDerived, keys.length ? keys : undefined);
        console.log(`retried ${r.tried}: ${r.released} released, ${r.stillQuarantined} still refused`);
        if (r.stillQuarantined) process.exitCode = 1;
      } finally {
        await db.close();
      }
    });
}

/** Runs the CLI; errors become one clear line and a non-zero exit, not a stack trace. */
export async function main(argv = process.argv): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode;
      return;
    }
    // A UserError carries a message for the user; anything else is a bug and gets its stack with LOG_LEVEL=debug.
    const known = err instanceof UserError;
    const refused = known ? undefined : credentialsRefused(err, configuredTemporalAddress());
    console.error(`taskmgr: ${refused?.message ?? (known ? (err as Error).message : String((err as Error)?.message ?? err))}`);
    if (!known && !refused && process.env.LOG_LEVEL === 'debug') console.error(err);
    process.exitCode = 1;
  }
}

/** The Temporal address a refusal came from, for its message. */
function configuredTemporalAddress(): string {
  try {
    return temporalTarget(loadConfig()).connectionOptions.address;
  } catch {
    return process.env.TEMPORAL_ADDRESS ?? 'the configured address';
  }
}

/** The answer's related records: counted, or (planned by the coalescer's round) not yet. */
function relatedText(outcome: DeletionOutcome): string {
  return outcome.plannedByRound ? 'its related records are' : `${outcome.affected} related records are`;
}
