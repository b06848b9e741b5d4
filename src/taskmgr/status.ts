/**
 * The system at a glance (`taskmgr status`, the terminal's Health view): workers polling, tasks by
 * status, runs completed and failed in the last 24 hours, follow-ups queued per data source with
 * the age of the oldest, records in quarantine, and Prometheus' alerts when PROMETHEUS_URL is set.
 * A few calls, not one per task: Temporal's task queue description and counts, PostgreSQL for
 * the rest.
 */
import type { TaskClient } from '../client/task-client.ts';
import { registryQueuePollers } from '../client/worker-wait.ts';
import type { Pool } from '../db/pool.ts';
import { followUpBacklog, quarantinedByDataSource } from '../registry/backlog.ts';
import { hourlyTaskFigures } from '../registry/health-history.ts';
import { alertsState, type AlertsState } from '../metrics/prometheus-alerts.ts';
import { TASK_STATUSES, type TaskStatus } from '../shared.ts';

export interface SystemStatus {
  taskQueue: string;
  /** Pollers the server saw lately, per queue: workflow tasks, follow-up activities, task runs. */
  workers: { workflowPollers: number; activityPollers: number; taskRunPollers: number; identities: string[] };
  tasks: Record<TaskStatus, number>;
  followUps: { dataSourceKey: string; queued: number; oldestSeconds: number }[];
  quarantine: { total: number; byDataSource: Record<string, number> };
  /** Task runs that ended in the last 24 hours (undefined without the database). */
  lastDay?: { completed: number; failed: number; failedByMethod: Record<string, number> };
  alerts: AlertsState;
}

export async function systemStatus(tasks: TaskClient, pool: Pool | undefined, prometheusUrl?: string): Promise<SystemStatus> {
  const queue = tasks.taskQueue;
  const [workflow, activity, runs] = (await registryQueuePollers(tasks.client, queue)).map((p) => {
    if ('error' in p) throw new Error(`cannot ask Temporal who polls ${p.taskQueue}: ${p.error}`);
    return p.identities;
  }) as [string[], string[], string[]];
  const counts = await Promise.all(TASK_STATUSES.map((status) => tasks.countTasks({ status })));
  const followUps = pool ? await followUpBacklog(pool) : [];
  const quarantined = pool ? await quarantinedByDataSource(pool) : new Map<string, number>();
  const [lastDay, alerts] = await Promise.all([pool ? runsOfLastDay(pool) : undefined, alertsState(prometheusUrl)]);
  return {
    taskQueue: queue,
    workers: {
      workflowPollers: workflow.length,
      activityPollers: activity.length,
      taskRunPollers: runs.length,
      identities: [...new Set([...workflow, ...activity, ...runs])].sort(),
    },
    tasks: Object.fromEntries(TASK_STATUSES.map((s, i) => [s, counts[i]!])) as Record<TaskStatus, number>,
    followUps: followUps.map((f) => ({ ...f, oldestSeconds: Math.round(f.oldestSeconds) })),
    quarantine: { total: [...quarantined.values()].reduce((n, v) => n + v, 0), byDataSource: Object.fromEntries(quarantined) },
    lastDay,
    alerts,
  };
}

async function runsOfLastDay(pool: Pool): Promise<NonNullable<SystemStatus['lastDay']>> {
  const figures = await hourlyTaskFigures(pool);
  const sum = (byMethod: Record<string, number[]>) => Object.fromEntries(Object.entries(byMethod).map(([m, hours]) => [m, hours.reduce((a, b) => a + b, 0)]));
  const completed = sum(figures.completed);
  const failedByMethod = Object.fromEntries(Object.entries(sum(figures.failed)).filter(([, n]) => n > 0));
  const total = (o: Record<string, number>) => Object.values(o).reduce((a, b) => a + b, 0);
  return { completed: total(completed), failed: total(failedByMethod), failedByMethod };
}

function alertsText(a: AlertsState): string {
  if (!a.configured) return 'not read (set PROMETHEUS_URL to see them)';
  if ('error' in a) return `Prometheus at ${a.url} could not be read: ${a.error}`;
  const firing = a.alerts.filter((x) => x.state === 'firing').map((x) => x.name);
  const pending = a.alerts.filter((x) => x.state === 'pending').map((x) => x.name);
  if (!firing.length && !pending.length) return 'none pending or firing';
  return [firing.length ? `${firing.length} firing (${firing.join(', ')})` : '', pending.length ? `${pending.length} pending (${pending.join(', ')})` : '']
    .filter(Boolean)
    .join('; ');
}

const counted = (n: number, noun: string) => `${n} ${noun}${n === 1 ? '' : 's'}`;

/** One screen of text. */
export function formatStatus(s: SystemStatus, withDatabase: boolean): string {
  const w = s.workers;
  const workers =
    w.workflowPollers === 0
      ? 'none polling: nothing runs; start one with `taskmgr worker`'
      : `${counted(w.identities.length, 'worker')} polling (${w.identities.join(', ')})`;
  const tasks =
    TASK_STATUSES.filter((st) => s.tasks[st] > 0)
      .map((st) => `${st} ${s.tasks[st]}`)
      .join(', ') || 'none kept';
  const followUps = !withDatabase
    ? 'unknown (no database: set DATABASE_URL)'
    : s.followUps.length === 0
      ? 'none queued'
      : s.followUps
          .slice(0, 10)
          .map((f) => `${f.dataSourceKey}: ${counted(f.queued, 'operation')}, the oldest ${f.oldestSeconds} s`)
          .join('; ') + (s.followUps.length > 10 ? `; and ${s.followUps.length - 10} more data sources` : '');
  const quarantine = !withDatabase
    ? 'unknown'
    : s.quarantine.total === 0
      ? 'none'
      : `${counted(s.quarantine.total, 'record')} (${Object.entries(s.quarantine.byDataSource)
          .map(([k, n]) => `${k || 'no data source'} ${n}`)
          .join(', ')}): taskmgr quarantine`;
  const day = s.lastDay;
  const lastDay = !day
    ? 'unknown (no database: set DATABASE_URL)'
    : `${counted(day.completed, 'run')} completed, ${day.failed} failed${
        day.failed
          ? ` (${Object.entries(day.failedByMethod)
              .map(([m, n]) => `${m} ${n}`)
              .join(', ')})`
          : ''
      }`;
  return [
    `registry-taskmgr on task queue ${s.taskQueue}`,
    `  Workers:     ${workers}`,
    `  Tasks:       ${tasks}`,
    `  Last 24 h:   ${lastDay}`,
    `  Follow-ups:  ${followUps}`,
    `  Quarantine:  ${quarantine}`,
    `  Alerts:      ${alertsText(s.alerts)}`,
  ].join('\n');
}
