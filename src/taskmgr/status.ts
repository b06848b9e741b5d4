/**
 * The system at a glance (`taskmgr status`): workers polling, tasks by status, follow-ups queued
 * per data source with the age of the oldest, records in quarantine. A few calls, not one per
 * task: Temporal's task queue description and counts, and PostgreSQL for the rest.
 */
import type { TaskClient } from '../client/tasks.ts';
import { pollerIdentities } from '../client/worker-wait.ts';
import type { Pool } from '../db/pool.ts';
import { followUpBacklog, quarantinedByDataSource } from '../registry/backlog.ts';
import { TASK_STATUSES, taskRunQueue, type TaskStatus } from '../shared.ts';

export interface SystemStatus {
  taskQueue: string;
  /** Pollers the server saw lately, per queue: workflow tasks, follow-up activities, task runs. */
  workers: { workflowPollers: number; activityPollers: number; taskRunPollers: number; identities: string[] };
  tasks: Record<TaskStatus, number>;
  followUps: { dataSourceKey: string; queued: number; oldestSeconds: number }[];
  quarantine: { total: number; byDataSource: Record<string, number> };
}

export async function systemStatus(tasks: TaskClient, pool: Pool | undefined): Promise<SystemStatus> {
  const queue = tasks.taskQueue;
  const [workflow, activity, runs] = await Promise.all([pollerIdentities(tasks.client, queue, 'workflow'), pollerIdentities(tasks.client, queue, 'activity'), pollerIdentities(tasks.client, taskRunQueue(queue), 'activity')]);
  const counts = await Promise.all(TASK_STATUSES.map((status) => tasks.countTasks({ status })));
  const followUps = pool ? await followUpBacklog(pool) : [];
  const quarantined = pool ? await quarantinedByDataSource(pool) : new Map<string, number>();
  return {
    taskQueue: queue,
    workers: { workflowPollers: workflow.length, activityPollers: activity.length, taskRunPollers: runs.length, identities: [...new Set([...workflow, ...activity, ...runs])].sort() },
    tasks: Object.fromEntries(TASK_STATUSES.map((s, i) => [s, counts[i]!])) as Record<TaskStatus, number>,
    followUps: followUps.map((f) => ({ ...f, oldestSeconds: Math.round(f.oldestSeconds) })),
    quarantine: { total: [...quarantined.values()].reduce((n, v) => n + v, 0), byDataSource: Object.fromEntries(quarantined) },
  };
}

const counted = (n: number, noun: string) => `${n} ${noun}${n === 1 ? '' : 's'}`;

/** One screen of text. */
export function formatStatus(s: SystemStatus, withDatabase: boolean): string {
  const w = s.workers;
  const workers = w.workflowPollers === 0
    ? 'none polling: nothing runs; start one with `taskmgr worker`'
    : `${counted(w.identities.length, 'worker')} polling (${w.identities.join(', ')})`;
  const tasks = TASK_STATUSES.filter((st) => s.tasks[st] > 0).map((st) => `${st} ${s.tasks[st]}`).join(', ') || 'none kept';
  const followUps = !withDatabase
    ? 'unknown (no database: set DATABASE_URL)'
    : s.followUps.length === 0
      ? 'none queued'
      : s.followUps.slice(0, 10).map((f) => `${f.dataSourceKey}: ${counted(f.queued, 'operation')}, the oldest ${f.oldestSeconds} s`).join('; ') + (s.followUps.length > 10 ? `; and ${s.followUps.length - 10} more data sources` : '');
  const quarantine = !withDatabase ? 'unknown' : s.quarantine.total === 0 ? 'none' : `${counted(s.quarantine.total, 'record')} (${Object.entries(s.quarantine.byDataSource).map(([k, n]) => `${k || 'no data source'} ${n}`).join(', ')}): taskmgr quarantine`;
  return [
    `registry-taskmgr on task queue ${s.taskQueue}`,
    `  Workers:     ${workers}`,
    `  Tasks:       ${tasks}`,
    `  Follow-ups:  ${followUps}`,
    `  Quarantine:  ${quarantine}`,
  ].join('\n');
}
