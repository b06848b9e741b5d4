/** Baseline workflows for the benchmarks: the least a durable hand-off can cost on this server. */
import { proxyActivities, proxyLocalActivities } from '@temporalio/workflow';
import type { BenchActivities } from './activities.ts';

const acts = proxyActivities<BenchActivities>({ startToCloseTimeout: '1 minute' });
const local = proxyLocalActivities<BenchActivities>({ startToCloseTimeout: '1 minute' });

/** One local activity (the cheapest durable step) that deletes a record with bare SQL; the caller awaits the result. */
export async function bareDeleteWorkflow(key: string): Promise<boolean> {
  return local.bareDelete(key);
}

/** One activity that does nothing: the minimal workflow. */
export async function oneActivityWorkflow(): Promise<void> {
  await acts.noop();
}
