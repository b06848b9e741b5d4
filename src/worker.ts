/** The Temporal worker: registry workflows and activities on one task queue, one injected pg pool. */
import { DefaultLogger, NativeConnection, Runtime, Worker, type LogLevel, type WorkerOptions } from '@temporalio/worker';
import { Client, Connection } from '@temporalio/client';
import { createActivities } from './activities/index.ts';
import { loadTasks, type LoadedTasks } from './taskmgr/discovery.ts';
import { ConfigError, type Config } from './config.ts';
import { taskRunQueue } from './shared.ts';
import { configurationProblem, temporalTarget } from './client/connection.ts';
import type { Pool } from './db/pool.ts';
import { createLogger, type Logger } from './log.ts';
import { startRegistryGauges } from './metrics/registry-gauges.ts';
import { startStrandedFollowUpSweep } from './client/coalescer-wake.ts';
import { temporalClientInterceptors, temporalWorkerPlugins } from './telemetry/tracing.ts';
import { bundleWorkflowsApart, removeBundle } from './workflow-bundle.ts';

const silentLogger = createLogger('silent');

export { WORKFLOWS_PATH } from './workflow-bundle.ts';

// The SDK is chatty at INFO (bundler output, state changes): it logs one level quieter than we do.
const SDK_LEVELS: Record<string, LogLevel> = { trace: 'TRACE', debug: 'DEBUG', info: 'WARN', warn: 'WARN', error: 'ERROR', fatal: 'ERROR', silent: 'ERROR' };

let runtimeInstalled = false;
/**
 * Routes the SDK's logs into our logger and, given `metricsAddress`, serves the SDK's metrics and
 * ours in Prometheus format there (GET /metrics), named as Temporal's alert examples expect:
 * counters end in _total, durations are histograms in seconds. Once per process, before the first
 * connection.
 */
export function installRuntime(logger: Logger, level: string, metricsAddress?: string): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  try {
    Runtime.install({
      logger: new DefaultLogger(SDK_LEVELS[level] ?? 'INFO', (entry) => {
        const method = entry.level === 'ERROR' ? 'error' : entry.level === 'WARN' ? 'warn' : entry.level === 'INFO' ? 'info' : 'debug';
        logger[method]({ sdk: true, ...entry.meta }, entry.message);
      }),
      ...(metricsAddress
        ? {
            telemetryOptions: {
              metrics: { prometheus: { bindAddress: metricsAddress, countersTotalSuffix: true, unitSuffix: true, useSecondsForDurations: true } },
            },
          }
        : {}),
    });
    Runtime.instance(); // binds the metrics endpoint now, so that a taken address fails at start
  } catch (err) {
    if (!metricsAddress) throw err;
    throw new ConfigError(
      `METRICS_ADDRESS ${metricsAddress}: ${(err as Error).message}; give each worker on this machine its own (e.g. METRICS_ADDRESS=127.0.0.1:9465), or METRICS_ADDRESS=off`,
    );
  }
}

/** Retries `fn` with backoff capped at 30 s until it succeeds or `signal` aborts: a server that is
 *  briefly away at start is waited for, as the worker waits for it later. */
export async function withConnectRetry<T>(address: string, fn: () => Promise<T>, logger: Logger, signal?: AbortSignal): Promise<T> {
  let delay = 500;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (signal?.aborted) throw err;
      // A certificate or a refused token is configuration, not an outage: waiting would hide it.
      const configuration = configurationProblem(err, address);
      if (configuration) throw configuration;
      logger.warn({ err: (err as Error).message, retryInMs: delay }, `Temporal at ${address} unreachable; retrying`);
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 30_000);
    }
  }
}

export interface RegistryWorkerDeps {
  config: Config;
  pool: Pool;
  connection: NativeConnection;
  /** A client for activities that add, describe or signal tasks. */
  client: Client;
  namespace: string;
  /** Task modules; loaded from src/tasks (and validated) when not given. */
  tasks?: LoadedTasks;
  taskQueue?: string;
  /** Where a failed metrics sample is logged (debug). */
  logger?: Logger;
  /** A prebuilt workflow bundle (tests build one and share it); else bundled from source. */
  workflowBundle?: WorkerOptions['workflowBundle'];
}

/**
 * The registry's workers: one on the task queue for workflows, follow-ups and bookkeeping, one on
 * `<queue>-runs` for task modules only. Task modules may run for hours and fan out; with their own
 * queue and slots they never hold the slots a deletion's follow-up needs.
 */
export interface RegistryWorker {
  run(): Promise<void>;
  shutdown(): void;
  getState(): ReturnType<Worker['getState']>;
  /** How long one workflow task's code may run (the SDK's isolate execution timeout). */
  workflowTaskLimitMs(): number;
}

/**
 * How long a shutdown waits for in-flight work (cancelled at once, every activity heartbeats or is
 * short) before the worker stops regardless: a stop that never ends holds a deploy or a restart;
 * under docker-compose.yml's stop_grace_period (60 s), so the worker ends itself and says so.
 */
const SHUTDOWN_LIMIT_MS = 50_000;
const SHUTDOWN_LIMIT = `${SHUTDOWN_LIMIT_MS / 1000} seconds`;

/**
 * One workflow task may carry a coalescer's 10,000 signals (the server's limit per run): 5 to 6.5 s
 * of workflow code on two busy cores (the SDK records a stack trace for every promise, a few per
 * signal). Past the SDK's 5 s the task failed, every time, and the coalescer never got past it.
 * The option is left out of WorkerOptions' type ("not exposed at the moment") but honoured: the
 * SDK spreads given options over its defaults. RegistryWorker.workflowTaskLimitMs shows it took.
 */
const LONGER_WORKFLOW_TASKS = { isolateExecutionTimeout: '30 seconds' } as unknown as Partial<WorkerOptions>;

/** A worker's end after its stop was asked: work that did not heed its cancel held it past SHUTDOWN_LIMIT (the SDK's message alone names neither). */
function forcedStop(reason: unknown, askedAt: number): Error {
  const seconds = Math.round((Date.now() - askedAt) / 1000);
  const message = `the worker stopped ${seconds} s after it was asked to, with work still running that did not heed its cancel (a task is retried on another worker after its heartbeat timeout): ${(reason as Error)?.message ?? reason}`;
  return new Error(message, { cause: reason });
}

/** Creates the workers; `run()` runs them until shutdown (SIGINT/SIGTERM by default). */
export async function createRegistryWorker(deps: RegistryWorkerDeps): Promise<RegistryWorker> {
  const tasks = deps.tasks ?? (await loadTasks());
  const taskQueue = deps.taskQueue ?? deps.config.temporal.taskQueue;
  const { batchSize, concurrency, coalesce } = deps.config.followUp;
  const followUp = { batchSize, concurrency, ...coalesce };
  const activities = createActivities({
    pool: deps.pool,
    temporal: deps.client,
    taskQueue,
    tasks,
    waits: deps.config.taskWaits,
    followUp,
    taskRetentionMs: deps.config.taskRetentionMs,
  });
  // Bundled apart unless given: webpack's memory never stays in the worker (workflow-bundle.ts).
  const bundled = deps.workflowBundle ? undefined : await bundleWorkflowsApart();
  const main = await Worker.create({
    connection: deps.connection,
    namespace: deps.namespace,
    taskQueue,
    workflowBundle: deps.workflowBundle ?? bundled,
    activities,
    plugins: temporalWorkerPlugins(),
    // Batches are I/O-bound on PostgreSQL: a few at a time saturate two cores.
    maxConcurrentActivityTaskExecutions: 8,
    shutdownForceTime: SHUTDOWN_LIMIT,
    ...LONGER_WORKFLOW_TASKS,
    ...(deps.config.cachedWorkflows ? { maxCachedWorkflows: deps.config.cachedWorkflows } : {}),
  }).finally(() => bundled && removeBundle(bundled));
  const runs = await Worker.create({
    connection: deps.connection,
    namespace: deps.namespace,
    taskQueue: taskRunQueue(taskQueue),
    activities: { runTask: activities.runTask },
    plugins: temporalWorkerPlugins(),
    maxConcurrentActivityTaskExecutions: deps.config.taskRunSlots,
    // A cancel reaches a running task with a heartbeat's answer: sent every 3 s, not every 24 s
    // (80% of the 30-s heartbeat timeout), so a cancelled task stops within seconds.
    maxHeartbeatThrottleInterval: '3 seconds',
    shutdownForceTime: SHUTDOWN_LIMIT,
  });
  const workers = [main, runs];
  let stopAskedAt = 0;
  return {
    async run() {
      // Always sampled: the lag also goes to PostgreSQL for the page's Health view; exported only with a metrics endpoint.
      const gauges = startRegistryGauges({
        pool: deps.pool,
        meter: deps.config.metricsAddress ? Runtime.instance().metricMeter : undefined,
        logger: deps.logger ?? silentLogger,
        methods: [...tasks.definitions.keys()],
        intervalMs: deps.config.metricsSampleMs,
      });
      const sweep = startStrandedFollowUpSweep({
        pool: deps.pool,
        client: deps.client,
        taskQueue,
        strandedAfterMs: deps.config.followUp.strandedAfterMs,
        logger: deps.logger ?? silentLogger,
      });
      // When the stop was asked (the SDK's own SIGINT/SIGTERM handling, or shutdown()): a failure after it is a forced stop.
      const stopAsked = () => (stopAskedAt ||= Date.now());
      const stopSignals = Runtime.instance().options.shutdownSignals;
      for (const signal of stopSignals) process.on(signal, stopAsked);
      try {
        // One stops, both stop: a half-running worker would take work it cannot finish. Both are
        // awaited before a failure is thrown (a forced shutdown rejects one first): closing the
        // connection under the other would fail and hide it.
        const ends = await Promise.allSettled(workers.map((w) => w.run().finally(() => workers.forEach((o) => o.getState() === 'RUNNING' && o.shutdown()))));
        const failed = ends.find((e) => e.status === 'rejected');
        // Past the limit after the stop was asked: the SDK forced it.
        if (failed) throw stopAskedAt && Date.now() - stopAskedAt >= SHUTDOWN_LIMIT_MS - 1000 ? forcedStop(failed.reason, stopAskedAt) : failed.reason;
      } finally {
        for (const signal of stopSignals) process.off(signal, stopAsked);
        // Waited for: a sample or a sweep under way must not use the pool or the client once the caller closes them.
        await Promise.all([gauges.stop(), sweep.stop()]);
      }
    },
    shutdown() {
      stopAskedAt ||= Date.now();
      for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
    },
    getState: () => main.getState(),
    workflowTaskLimitMs: () => main.options.isolateExecutionTimeoutMs,
  };
}

/** Connects to Temporal (waiting for it if needed): the worker's native connection and a client. */
export async function connectWorker(config: Config, logger: Logger, addressOverride?: string, signal?: AbortSignal) {
  const target = temporalTarget(config, addressOverride);
  const { address } = target.connectionOptions;
  const connection = await withConnectRetry(address, () => NativeConnection.connect(target.connectionOptions), logger, signal);
  const clientConnection = await withConnectRetry(address, () => Connection.connect(target.connectionOptions), logger, signal);
  const client = new Client({ connection: clientConnection, namespace: target.namespace, interceptors: temporalClientInterceptors() });
  return {
    connection,
    client,
    namespace: target.namespace,
    address: target.connectionOptions.address,
    async close() {
      await clientConnection.close();
      await connection.close();
    },
  };
}
