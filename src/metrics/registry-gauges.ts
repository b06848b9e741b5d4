/**
 * The registry's gauges, sampled from PostgreSQL by each worker process every interval and
 * exported through the SDK's meter, on the worker's Prometheus endpoint beside the SDK's metrics:
 * follow-up lag and queued operations per data source, quarantined records per data source,
 * WAITING tasks per method, and the worker's PostgreSQL pool. Every worker reports the same
 * database figures: aggregate them with max(), not sum(). Each sample of the lag is also kept in
 * PostgreSQL for the page's Health view, with or without a metrics endpoint.
 */
import type { MetricGauge, MetricMeter } from '@temporalio/common';
import type { Pool } from '../db/pool.ts';
import type { Logger } from '../log.ts';
import { followUpBacklog, quarantinedByDataSource } from '../registry/backlog.ts';
import { recordLagSample } from '../registry/health-history.ts';
import { waitingByMethod } from '../taskmgr/task-store.ts';
import { every } from '../periodic.ts';

/**
 * A gauge per label value; a label seen before and absent now is set to 0, so that a data source
 * whose queue emptied does not keep its last lag.
 */
function labelledGauge(gauge: MetricGauge, labelName: string) {
  const seen = new Set<string>();
  return (values: Map<string, number>) => {
    for (const label of seen) if (!values.has(label)) gauge.set(0, { [labelName]: label });
    for (const [label, value] of values) {
      gauge.set(value, { [labelName]: label });
      seen.add(label);
    }
  };
}

const DEFAULT_SAMPLE_MS = 15_000;

/** `methods`: the task methods this worker knows; each gets its WAITING count, 0 included. */
export function startRegistryGauges(deps: { pool: Pool; meter?: MetricMeter; logger: Logger; methods: string[]; intervalMs?: number }): {
  stop(): Promise<void>;
} {
  const { pool } = deps;
  const failed = (message: string) => deps.logger.debug({ err: message }, 'metrics sample failed');
  const sampleLag = async () => recordLagSample(pool, await followUpBacklog(pool));
  const meter = deps.meter;
  if (!meter) return every(deps.intervalMs ?? DEFAULT_SAMPLE_MS, sampleLag, failed);
  const lag = labelledGauge(
    meter.createGauge(
      'registry_followup_lag_seconds',
      'float',
      undefined,
      'Age of the oldest follow-up handed to its coalescer and not finished, per data source',
    ),
    'data_source',
  );
  const queued = labelledGauge(
    meter.createGauge('registry_followup_queued_operations', 'int', undefined, 'Operations handed to their coalescer and not finished, per data source'),
    'data_source',
  );
  const quarantined = labelledGauge(
    meter.createGauge('registry_quarantined_records', 'int', undefined, 'Records whose derived state PostgreSQL refused, per data source'),
    'data_source',
  );
  const waiting = labelledGauge(meter.createGauge('registry_tasks_waiting', 'int', undefined, 'WAITING tasks per method'), 'method');
  const poolGauge = meter.createGauge(
    'registry_pg_pool_connections',
    'int',
    undefined,
    "The worker's PostgreSQL pool: connections in use and idle, callers waiting for one",
  );
  const sample = async () => {
    const [backlog, quarantine, waits] = await Promise.all([
      followUpBacklog(pool),
      quarantinedByDataSource(pool, { everyDataSource: true }),
      waitingByMethod(pool),
    ]);
    await recordLagSample(pool, backlog);
    lag(new Map(backlog.map((b) => [b.dataSourceKey, b.oldestSeconds])));
    queued(new Map(backlog.map((b) => [b.dataSourceKey, b.queued])));
    // Every data source, 0 included: a healthy registry exports its zeros.
    quarantined(quarantine);
    waiting(new Map([...deps.methods.map((m): [string, number] => [m, 0]), ...waits]));
  };
  const samplePool = () => {
    poolGauge.set(pool.totalCount - pool.idleCount, { state: 'in_use' });
    poolGauge.set(pool.idleCount, { state: 'idle' });
    poolGauge.set(pool.waitingCount, { state: 'waiting' });
  };
  return every(
    deps.intervalMs ?? DEFAULT_SAMPLE_MS,
    () => {
      samplePool();
      return sample();
    },
    failed,
  );
}
