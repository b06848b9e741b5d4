/**
 * Metrics recorded by workflows, through the SDK's replay-safe meter (nothing is recorded while a
 * history replays). They reach the worker's Prometheus endpoint beside the SDK's own.
 */
import { metricMeter } from '@temporalio/workflow';

/** A task reached its end: registry_tasks_finished_total{method,status} and registry_task_duration_seconds{method}. */
export function recordTaskFinished(method: string, status: 'COMPLETED' | 'FAILED' | 'CANCELLED', durationMs: number | undefined): void {
  metricMeter.createCounter('registry_tasks_finished', undefined, 'Tasks that reached COMPLETED, FAILED or CANCELLED, by method').add(1, { method, status });
  if (durationMs !== undefined) {
    metricMeter
      .createHistogram('registry_task_duration', 'float', 'seconds', 'Time from a task run starting to its end, by method')
      .record(durationMs / 1000, { method });
  }
}

/** A coalesced round finished: registry_followup_rounds_total and registry_followup_records_processed_total, by data source. */
export function recordFollowUpRound(dataSource: string, records: number): void {
  metricMeter.createCounter('registry_followup_rounds', undefined, 'Coalesced follow-up rounds finished, by data source').add(1, { data_source: dataSource });
  metricMeter
    .createCounter('registry_followup_records_processed', undefined, 'Records rechecked, reindexed and re-cached by follow-up rounds, by data source')
    .add(records, { data_source: dataSource });
}
