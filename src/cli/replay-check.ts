/**
 * `taskmgr replay-check`: before new workers roll out, replay recent histories of every workflow
 * type from the server against this code (or `--workflows`). A non-determinism error means running
 * executions would fail on the new code: it exits 1 and names them.
 */
import { SetupError } from '../user-error.ts';
import path from 'node:path';
import type { Command } from 'commander';
import type { HistoryAndWorkflowId } from '@temporalio/client';
import { loadConfig } from '../config.ts';
import { RegistryClient } from '../client/registry.ts';
import { parseDuration } from '../taskmgr/duration.ts';
import { intOption } from './common.ts';

export class ReplayCheckFailed extends SetupError {
  override name = 'ReplayCheckFailed';
}

interface ReplayCheckOptions {
  since: string;
  perType: number;
  workflows?: string;
}

export function addReplayCheckCommand(program: Command) {
  program
    .command('replay-check')
    .description(
      'replay recent histories of every workflow type on this task queue against this code; exit 1 on a non-determinism error (run it before deploying new workers)',
    )
    .option('--since <duration>', 'executions started within this long', '7 days')
    .option('--per-type <n>', 'newest executions replayed per workflow type', intOption('--per-type', 1, 10_000), 100)
    .option('--workflows <path>', "workflow code to check (default: this version's)")
    .action(async (opts: ReplayCheckOptions) => replayCheck(opts));
}

async function replayCheck(opts: ReplayCheckOptions) {
  // Loaded here: the SDK's worker (a native runtime) only for this command.
  const { Worker } = await import('@temporalio/worker');
  const { DeterminismViolationError } = await import('@temporalio/workflow');
  const { WORKFLOWS_PATH } = await import('../worker.ts');
  const config = loadConfig();
  const since = new Date(Date.now() - parseDuration(opts.since));
  const workflowsPath = opts.workflows ? path.resolve(opts.workflows) : WORKFLOWS_PATH;
  const types = Object.entries(await import(workflowsPath))
    .filter(([, v]) => typeof v === 'function')
    .map(([name]) => name);
  const registry = await RegistryClient.connect(config);
  const counts = new Map<string, number>();
  const failures: string[] = [];
  try {
    async function* recent(): AsyncGenerator<HistoryAndWorkflowId> {
      for (const type of types) {
        const query = `WorkflowType = '${type}' AND TaskQueue = '${config.temporal.taskQueue}' AND StartTime > '${since.toISOString()}'`;
        let n = 0;
        for await (const h of registry.client.workflow.list({ query, pageSize: Math.min(opts.perType, 1000) }).intoHistories()) {
          counts.set(type, (counts.get(type) ?? 0) + 1);
          yield h;
          if (++n >= opts.perType) break;
        }
      }
    }
    for await (const result of Worker.runReplayHistories({ workflowsPath }, recent())) {
      if (!result.error) continue;
      const kind = result.error instanceof DeterminismViolationError ? 'non-deterministic' : 'failed to replay';
      failures.push(`${kind}: ${result.workflowId} (run ${result.runId}): ${result.error.message.split('\n')[0]}`);
    }
  } finally {
    await registry.close();
  }
  const total = [...counts.values()].reduce((a, b) => a + b, 0);
  const byType = types.map((t) => `${counts.get(t) ?? 0} ${t}`).join(', ');
  for (const f of failures) console.error(f);
  if (failures.length)
    throw new ReplayCheckFailed(
      `${failures.length} of ${total} histories do not replay on ${workflowsPath}: running executions would fail on it; do not deploy it`,
    );
  console.log(
    `replayed ${total} histories started since ${since.toISOString()} on task queue ${config.temporal.taskQueue} (${byType}): all replay on this code`,
  );
}
