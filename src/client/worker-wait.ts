/**
 * Calls that a worker must answer (an update-with-start's update: a task's admission, a record's
 * deletion) wait forever while no worker polls the task queue. answeredWithin waits for them as
 * long as a worker polls, and otherwise says, after a while, that the work was started and is
 * queued for a worker, so that the caller hears that instead of hanging.
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
export const noWorkerMessage = (what: string, taskQueue: string) =>
  `${what}, but no worker has taken it up yet: is a worker (taskmgr worker) running on task queue ${taskQueue}? It waits until one does.`;

/** TaskQueueType numbers of the API (temporal.api.enums.v1). */
const TASK_QUEUE_TYPES = { workflow: 1, activity: 2 } as const;

/** How long a call waits for a worker before it says none has taken the work up (WORKER_WAIT's default). */
export const DEFAULT_WORKER_WAIT_MS = 15_000;

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
 * polls, a slow answer (PostgreSQL away, a busy worker) is waited for. With none: `{ queued: true }`
 * when the workflow `workflowId` exists (started, waiting for a worker), else an error.
 */
export async function answeredWithin<T>(
  client: Client,
  work: { workflowId: string; taskQueue: string; waitMs: number; stop?: AbortSignal },
  call: () => Promise<T>,
): Promise<{ answer: T } | { queued: true }> {
  const abort = new AbortController();
  // Stopped from outside (an activity cancelled by its worker's shutdown): the call is abandoned.
  const stopped = work.stop
    ? new Promise<never>((_, reject) =>
        work.stop!.aborted ? reject(work.stop!.reason) : work.stop!.addEventListener('abort', () => reject(work.stop!.reason), { once: true }),
      )
    : undefined;
  stopped?.catch(() => undefined);
  const answered = client.connection.withAbortSignal(abort.signal, call).then((answer) => ({ answer }));
  // Raced below, perhaps not at once: a failure meanwhile must not count as unhandled.
  answered.catch(() => undefined);
  for (;;) {
    let timer: NodeJS.Timeout | undefined;
    const waited = new Promise<'waited'>((resolve) => (timer = setTimeout(() => resolve('waited'), work.waitMs)));
    try {
      const first = await Promise.race(stopped ? [answered, waited, stopped] : [answered, waited]).catch((err: unknown) => {
        if (work.stop?.aborted) abort.abort();
        throw err;
      });
      if (first !== 'waited') return first;
    } finally {
      clearTimeout(timer);
    }
    if ((await pollerIdentities(client, work.taskQueue, 'workflow').catch(() => ['unknown'])).length > 0) continue;
    abort.abort();
    await answered.catch(() => undefined);
    const started = await client.workflow
      .getHandle(work.workflowId)
      .describe()
      .then(
        () => true,
        () => false,
      );
    if (!started) throw new Error(`Temporal did not answer within ${work.waitMs / 1000} s, and ${work.workflowId} was not started`);
    return { queued: true };
  }
}
