/**
 * Calls that a worker must answer (an update-with-start's update: a task's admission, a record's
 * deletion, a reschedule) wait forever while no worker polls the task queue, or while its workers
 * cannot answer. answeredWithin waits for them while a worker polls, up to a limit, and otherwise
 * says that the work was started and is queued for a worker, so that the caller hears that
 * instead of hanging.
 */
import { UserError } from '../user-error.ts';
import type { Client } from '@temporalio/client';
import { taskRunQueue } from '../shared.ts';

/** The work was started and waits for a worker, which has not taken it up within the wait. */
export class QueuedForWorkerError extends UserError {
  override name = 'QueuedForWorker';
  /** Not a failure: the work waits for a worker (HTTP answers 202 with the message). */
  override readonly httpStatus = 202;
}

/** What a caller hears when no worker took the work up: what waits, and what to check. */
export const noWorkerMessage = (what: string, taskQueue: string, then = 'It waits until one does.') =>
  `${what}, but no worker has taken it up yet: is a worker (taskmgr worker) running on task queue ${taskQueue}? ${then}`;

/** What a caller hears when workers poll but none answered within the limit. */
export const unansweredMessage = (what: string, taskQueue: string, limitMs: number, then = 'It goes on when they can.') =>
  `${what}, but the workers on task queue ${taskQueue} have not answered within ${limitMs / 1000} s (is PostgreSQL reachable from them? their logs say why). ${then}`;

/** Why a call went unanswered: no worker polls, or workers poll and have not answered within the limit; `then` says what becomes of it. */
export const queuedMessage = (r: { noWorker: boolean }, what: string, taskQueue: string, limitMs: number, then?: string) =>
  r.noWorker ? noWorkerMessage(what, taskQueue, then) : unansweredMessage(what, taskQueue, limitMs, then);

/** TaskQueueType numbers of the API (temporal.api.enums.v1). */
const TASK_QUEUE_TYPES = { workflow: 1, activity: 2 } as const;

/** How long a call waits for a worker before it says none has taken the work up (WORKER_WAIT's default). */
export const DEFAULT_WORKER_WAIT_MS = 15_000;

/**
 * How long a call waits at most while workers poll: a slow answer (PostgreSQL away, a busy worker)
 * is waited for this long, not for ever (an HTTP request or a CLI command must end).
 */
export const DEFAULT_ANSWER_LIMIT_MS = 120_000;

/**
 * The identities of the workers that polled a task queue lately (the server remembers pollers for
 * minutes), for its workflow tasks or its activity tasks.
 */
export async function pollerIdentities(
  client: Pick<Client, 'workflowService'> & { options: { namespace: string } },
  taskQueue: string,
  kind: 'workflow' | 'activity',
): Promise<string[]> {
  const r = await client.workflowService.describeTaskQueue({
    namespace: client.options.namespace,
    taskQueue: { name: taskQueue },
    taskQueueType: TASK_QUEUE_TYPES[kind],
  });
  return (r.pollers ?? []).map((p) => p.identity ?? '?');
}

/** Who polls a queue: its workers' identities, or why the server could not say. */
export type QueuePollers = { taskQueue: string; kind: 'workflow' | 'activity' } & ({ identities: string[] } | { error: string });

/**
 * The pollers of a registry's three queues: its workflows, its activities (follow-ups and
 * bookkeeping) and its task runs (`<queue>-runs`), asked at once.
 */
export async function registryQueuePollers(
  client: Pick<Client, 'workflowService'> & { options: { namespace: string } },
  taskQueue: string,
): Promise<QueuePollers[]> {
  const queues = [
    { taskQueue, kind: 'workflow' as const },
    { taskQueue, kind: 'activity' as const },
    { taskQueue: taskRunQueue(taskQueue), kind: 'activity' as const },
  ];
  return Promise.all(
    queues.map(async (q) =>
      pollerIdentities(client, q.taskQueue, q.kind).then(
        (identities) => ({ ...q, identities }),
        (err: Error) => ({ ...q, error: err.message }),
      ),
    ),
  );
}

/**
 * Runs `call`; every `waitMs` without an answer it looks for workers on `taskQueue`. While one
 * polls, a slow answer (PostgreSQL away, a busy worker) is waited for, up to `limitMs` in all
 * (DEFAULT_ANSWER_LIMIT_MS). With none, or past the limit: `{ queued: true, noWorker }` when the
 * workflow `workflowId` exists (started, waiting for a worker), else an error.
 */
export async function answeredWithin<T>(
  client: Client,
  work: { workflowId: string; taskQueue: string; waitMs: number; limitMs?: number; stop?: AbortSignal },
  call: () => Promise<T>,
): Promise<{ answer: T } | { queued: true; noWorker: boolean }> {
  const startedAt = Date.now();
  const giveUpAt = startedAt + Math.max(work.limitMs ?? DEFAULT_ANSWER_LIMIT_MS, work.waitMs);
  const abort = new AbortController();
  // Stopped from outside (an activity cancelled by its worker's shutdown): the call is abandoned.
  const stopped = work.stop
    ? new Promise<never>((_, reject) =>
        work.stop!.aborted ? reject(work.stop!.reason) : work.stop!.addEventListener('abort', () => reject(work.stop!.reason), { once: true }),
      )
    : undefined;
  stopped?.catch(() => undefined);
  const answered = client.connection.withAbortSignal(abort.signal, call).then((answer) => ({ answer }));
  // Raced below, perhaps not at once: a failure meanwhile must not count as unhandled. What it
  // settled with is kept: an answer (or a refusal) that comes while the pollers are asked counts.
  let settled: { answer: T } | { error: unknown } | undefined;
  answered.then(
    (a) => (settled = a),
    (error: unknown) => (settled = { error }),
  );
  for (;;) {
    let timer: NodeJS.Timeout | undefined;
    const waitMs = Math.max(0, Math.min(work.waitMs, giveUpAt - Date.now()));
    const waited = new Promise<'waited'>((resolve) => (timer = setTimeout(() => resolve('waited'), waitMs)));
    try {
      const first = await Promise.race(stopped ? [answered, waited, stopped] : [answered, waited]).catch((err: unknown) => {
        if (work.stop?.aborted) abort.abort();
        throw err;
      });
      if (first !== 'waited') return first;
    } finally {
      clearTimeout(timer);
    }
    const noWorker = (await pollerIdentities(client, work.taskQueue, 'workflow').catch(() => ['unknown'])).length === 0;
    if (settled) return answered;
    if (!noWorker && Date.now() < giveUpAt) continue;
    abort.abort();
    await answered.catch(() => undefined);
    if (settled && 'answer' in settled) return settled; // it came as the call was abandoned
    const started = await client.workflow
      .getHandle(work.workflowId)
      .describe()
      .then(
        () => true,
        () => false,
      );
    if (!started) throw new Error(`Temporal did not answer within ${Math.round((Date.now() - startedAt) / 1000)} s, and ${work.workflowId} was not started`);
    return { queued: true, noWorker };
  }
}
