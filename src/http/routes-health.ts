/**
 * /api/health/details: what the page's Health view charts. The history comes from PostgreSQL
 * (registry/health-history.ts), the workers polling from one describeTaskQueue per task queue,
 * the alerts from Prometheus when PROMETHEUS_URL is set. One answer is shared by every watcher
 * for a few seconds: no watcher count reaches Temporal's or PostgreSQL's limits.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import fastifyStatic from '@fastify/static';
import type { Pool } from '../db/pool.ts';
import type { TaskClient } from '../client/task-client.ts';
import { registryQueuePollers, type QueuePollers } from '../client/worker-wait.ts';
import { followUpBacklog, quarantinedByDataSource, type FollowUpBacklog } from '../registry/backlog.ts';
import { hourlyTaskFigures, lagHistory, type HourlyTaskFigures, type LagHistory } from '../registry/health-history.ts';
import type { Guard } from './guard.ts';
import { SharedAnswers } from './shared-answers.ts';
import { alertsState, type AlertsState } from '../metrics/prometheus-alerts.ts';

/** The charting library (uPlot), served from the project: the page loads nothing from elsewhere. */
const UPLOT_DIR = path.dirname(createRequire(import.meta.url).resolve('uplot'));

export interface HealthDetails {
  tasks: HourlyTaskFigures;
  lag: LagHistory;
  backlog: FollowUpBacklog[];
  quarantined: Array<{ dataSourceKey: string; records: number }>;
  /** Worker identities polling each task queue (workflows and follow-ups; task runs). */
  workers: QueuePollers[];
  alerts: AlertsState;
}

export async function registerHealthRoutes(app: FastifyInstance, deps: { pool: Pool; tasks: TaskClient; guard: Guard; prometheusUrl?: string }): Promise<void> {
  await app.register(fastifyStatic, {
    root: UPLOT_DIR,
    prefix: '/vendor/uplot/',
    decorateReply: false,
    allowedPath: (p) => /^\/uPlot\.(iife\.min\.js|min\.css)$/.test(p),
  });
  const shared = new SharedAnswers<HealthDetails>(5000);
  app.get('/api/health/details', { onRequest: deps.guard('read') }, async () => shared.get('details', () => healthDetails(deps)));
}

async function healthDetails(deps: { pool: Pool; tasks: TaskClient; prometheusUrl?: string }): Promise<HealthDetails> {
  const [tasks, lag, backlog, quarantine, workers, alerts] = await Promise.all([
    hourlyTaskFigures(deps.pool),
    lagHistory(deps.pool),
    followUpBacklog(deps.pool),
    quarantinedByDataSource(deps.pool),
    registryQueuePollers(deps.tasks.client, deps.tasks.taskQueue),
    alertsState(deps.prometheusUrl),
  ]);
  const quarantined = [...quarantine].filter(([, n]) => n > 0).map(([dataSourceKey, records]) => ({ dataSourceKey, records }));
  return { tasks, lag, backlog, quarantined, workers, alerts };
}
