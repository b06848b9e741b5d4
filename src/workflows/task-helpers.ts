/** Pure helpers of the registryTask workflow, shared by its versions (no commands, so no effect on replay). */
import { ActivityFailure, TimeoutFailure } from '@temporalio/workflow';
import { TASK_MEMO_FIELDS, type TaskInfo } from '../taskmgr/info.ts';
import type { TaskLogLine } from '../taskmgr/types.ts';

const MAX_LOG_LINES = 500;

/** What task lists show without querying each task (the memo comes back with list results). */
export function taskMemo(info: TaskInfo): Record<string, unknown> {
  const clip = (s: string | undefined, n: number) => (s && s.length > n ? `${s.slice(0, n)}…` : s) ?? null;
  return {
    ...Object.fromEntries(TASK_MEMO_FIELDS.map((k) => [k, info[k] ?? null])),
    logMessage: clip(info.input.logMessage, 200),
    error: clip(info.error, 300),
    keyCount: info.keyCount ?? info.input.registryObjectKeys?.length ?? 0,
  };
}

/** A run's output as kept among a loop's recent runs: 20 of them travel with every continue-as-new. */
export function summarisedOutput(output: unknown): unknown {
  const json = JSON.stringify(output ?? null);
  return json.length <= 2000 ? output : { truncated: true, bytes: json.length };
}

/** Says in words why an attempt timed out: a dead or stuck worker, or a task past its time limit. */
export function timeoutMessage(err: unknown, options: { timeoutMs: number; maxAttempts: number; heartbeatTimeoutMs?: number } | undefined): string | undefined {
  if (!(err instanceof ActivityFailure) || !(err.cause instanceof TimeoutFailure) || !options) return undefined;
  const attempts = `${options.maxAttempts} attempt${options.maxAttempts === 1 ? '' : 's'}`;
  if (err.cause.timeoutType === 'HEARTBEAT') {
    return `the worker running the task stopped responding for ${(options.heartbeatTimeoutMs ?? 30_000) / 1000} s (it crashed, was killed or is blocked) on each of ${attempts}`;
  }
  if (err.cause.timeoutType === 'START_TO_CLOSE') return `the task ran longer than its timeout of ${options.timeoutMs / 1000} s on each of ${attempts}`;
  return undefined;
}

export function appendLogs(info: TaskInfo, lines: TaskLogLine[]) {
  info.logs = [...info.logs, ...lines].slice(-MAX_LOG_LINES);
}

export function messageOf(err: unknown): string {
  let e = err as { message?: string; cause?: unknown } | undefined;
  // ActivityFailure wraps the task's own ApplicationFailure: report the innermost message.
  while (e && typeof e === 'object' && e.cause && typeof (e.cause as { message?: unknown }).message === 'string') e = e.cause as typeof e;
  return e?.message ?? String(err);
}

export function failureDetails(err: unknown): { logs?: TaskLogLine[]; attempt?: number } | undefined {
  let e = err as { details?: unknown[]; cause?: unknown } | undefined;
  while (e && typeof e === 'object') {
    if (Array.isArray(e.details) && e.details[0] && typeof e.details[0] === 'object') return e.details[0] as { logs?: TaskLogLine[]; attempt?: number };
    e = e.cause as typeof e;
  }
  return undefined;
}
