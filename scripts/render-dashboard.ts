/**
 * `npm run render-dashboard`: writes observability/grafana/dashboards/registry-taskmgr.json from
 * the panel table below (a test checks the committed file is this rendering, and that every
 * metric a panel or an alert uses is exported by a worker or the page).
 */
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

interface Panel {
  title: string;
  /** PromQL, one per series group; `legend` names each line. */
  targets: { expr: string; legend: string }[];
  unit?: string;
  description: string;
}

/** Rows of the dashboard: follow-ups, tasks, workers, the page. */
export const DASHBOARD_ROWS: { title: string; panels: Panel[] }[] = [
  {
    title: 'Follow-ups (recheck, reindex, re-cache after a change)',
    panels: [
      {
        title: 'Follow-up lag per data source',
        unit: 's',
        description: 'Age of the oldest follow-up handed to its coalescer and not finished',
        targets: [{ expr: 'max by (data_source) (registry_followup_lag_seconds)', legend: '{{data_source}}' }],
      },
      {
        title: 'Queued operations per data source',
        description: 'Operations waiting for their coalescer',
        targets: [{ expr: 'max by (data_source) (registry_followup_queued_operations)', legend: '{{data_source}}' }],
      },
      {
        title: 'Records processed per second',
        unit: 'ops',
        description: 'Records rechecked, reindexed and re-cached by follow-up rounds',
        targets: [{ expr: 'sum by (data_source) (rate(registry_followup_records_processed_total[5m]))', legend: '{{data_source}}' }],
      },
      {
        title: 'Rounds per minute',
        description: 'Coalesced rounds finished',
        targets: [{ expr: 'sum by (data_source) (rate(registry_followup_rounds_total[5m])) * 60', legend: '{{data_source}}' }],
      },
      {
        title: 'Batch duration (p50, p95)',
        unit: 's',
        description: 'One batch rechecked, reindexed and re-cached in one transaction',
        targets: [
          {
            expr: 'histogram_quantile(0.5, sum by (le) (rate(temporal_activity_execution_latency_seconds_bucket{activity_type="refreshBatch"}[5m])))',
            legend: 'p50',
          },
          {
            expr: 'histogram_quantile(0.95, sum by (le) (rate(temporal_activity_execution_latency_seconds_bucket{activity_type="refreshBatch"}[5m])))',
            legend: 'p95',
          },
        ],
      },
      {
        title: 'Records in quarantine',
        description: 'PostgreSQL refused their derived state (taskmgr quarantine)',
        targets: [{ expr: 'max by (data_source) (registry_quarantined_records)', legend: '{{data_source}}' }],
      },
    ],
  },
  {
    title: 'Tasks',
    panels: [
      {
        title: 'Tasks finished per hour',
        description: 'By method and outcome',
        targets: [{ expr: 'sum by (method, status) (increase(registry_tasks_finished_total[1h]))', legend: '{{method}} {{status}}' }],
      },
      {
        title: 'Task duration p95',
        unit: 's',
        description: 'From a run starting to its end',
        targets: [{ expr: 'histogram_quantile(0.95, sum by (le, method) (rate(registry_task_duration_seconds_bucket[1h])))', legend: '{{method}}' }],
      },
      {
        title: 'WAITING tasks',
        description: 'Scheduled, waiting for a prerequisite, or for a slot',
        targets: [{ expr: 'max by (method) (registry_tasks_waiting)', legend: '{{method}}' }],
      },
      {
        title: 'Stale records found by maintenance',
        description: 'Per hour; each gets a repair task',
        targets: [{ expr: 'sum(increase(registry_maintenance_stale_records_total[1h]))', legend: 'stale records' }],
      },
    ],
  },
  {
    title: 'Workers',
    panels: [
      {
        title: 'Pollers',
        description: 'Workers polling, by task kind (0: nothing runs)',
        targets: [{ expr: 'sum by (poller_type) (temporal_num_pollers)', legend: '{{poller_type}}' }],
      },
      {
        title: 'Free task slots',
        description: 'Per worker and kind; 0 for long: add workers',
        targets: [{ expr: 'sum by (instance, worker_type) (temporal_worker_task_slots_available)', legend: '{{instance}} {{worker_type}}' }],
      },
      {
        title: 'Workflow task schedule-to-start p99',
        unit: 's',
        description: 'How long a workflow task waits for a worker',
        targets: [
          {
            expr: 'histogram_quantile(0.99, sum by (le, task_queue) (rate(temporal_workflow_task_schedule_to_start_latency_seconds_bucket[5m])))',
            legend: '{{task_queue}}',
          },
        ],
      },
      {
        title: 'Workflow task failures',
        description: 'By reason (NonDeterminismError after a deploy: roll back)',
        targets: [{ expr: 'sum by (failure_reason) (rate(temporal_workflow_task_execution_failed_total[5m]))', legend: '{{failure_reason}}' }],
      },
      {
        title: 'Sticky cache size',
        description: 'Workflows kept in worker memory',
        targets: [{ expr: 'sum by (instance) (temporal_sticky_cache_size)', legend: '{{instance}}' }],
      },
      {
        title: 'PostgreSQL pool',
        description: 'Per worker: connections in use and idle, callers waiting',
        targets: [{ expr: 'sum by (instance, state) (registry_pg_pool_connections)', legend: '{{instance}} {{state}}' }],
      },
    ],
  },
  {
    title: 'Task manager page and HTTP API',
    panels: [
      {
        title: 'Requests per second',
        unit: 'reqps',
        description: 'By route and status',
        targets: [{ expr: 'sum by (route, status) (rate(taskmgr_http_requests_total[5m]))', legend: '{{route}} {{status}}' }],
      },
      {
        title: 'Request duration p95',
        unit: 's',
        description: 'By route',
        targets: [{ expr: 'histogram_quantile(0.95, sum by (le, route) (rate(taskmgr_http_request_duration_seconds_bucket[5m])))', legend: '{{route}}' }],
      },
      {
        title: 'Failed sign-ins per minute',
        description: 'Wrong credentials, and sign-ins refused after too many',
        targets: [{ expr: 'sum by (via, outcome) (rate(taskmgr_failed_sign_ins_total[5m])) * 60', legend: '{{via}} {{outcome}}' }],
      },
    ],
  },
];

/** The dashboard as Grafana's JSON model: a row per group, three panels across. */
export function renderDashboard(): string {
  const panels: unknown[] = [];
  let id = 1;
  let y = 0;
  for (const row of DASHBOARD_ROWS) {
    panels.push({ id: id++, type: 'row', title: row.title, collapsed: false, gridPos: { h: 1, w: 24, x: 0, y: y++ }, panels: [] });
    row.panels.forEach((p, i) => {
      panels.push({
        id: id++,
        type: 'timeseries',
        title: p.title,
        description: p.description,
        datasource: { type: 'prometheus', uid: 'prometheus' },
        gridPos: { h: 8, w: 8, x: (i % 3) * 8, y: y + Math.floor(i / 3) * 8 },
        fieldConfig: { defaults: { unit: p.unit ?? 'short' }, overrides: [] },
        options: { legend: { displayMode: 'list', placement: 'bottom' }, tooltip: { mode: 'multi' } },
        targets: p.targets.map((t, j) => ({
          refId: String.fromCharCode(65 + j),
          expr: t.expr,
          legendFormat: t.legend,
          datasource: { type: 'prometheus', uid: 'prometheus' },
        })),
      });
    });
    y += Math.ceil(row.panels.length / 3) * 8;
  }
  const dashboard = {
    uid: 'registry-taskmgr',
    title: 'registry-taskmgr',
    tags: ['registry-taskmgr', 'temporal'],
    timezone: 'browser',
    schemaVersion: 39,
    version: 1,
    refresh: '30s',
    time: { from: 'now-24h', to: 'now' },
    panels,
  };
  return `${JSON.stringify(dashboard, null, 2)}\n`;
}

export const DASHBOARD_FILE = path.join(import.meta.dirname, '..', 'observability', 'grafana', 'dashboards', 'registry-taskmgr.json');

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  fs.writeFileSync(DASHBOARD_FILE, renderDashboard());
  console.log(`wrote ${path.relative(process.cwd(), DASHBOARD_FILE)}`);
}
