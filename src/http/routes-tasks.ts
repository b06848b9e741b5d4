/** /api/tasks: the task manager's client functions over HTTP. */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { TaskClient } from '../client/task-client.ts';
import { noWorkerMessage } from '../client/worker-wait.ts';
import { TASK_STATUSES, type TaskStatus } from '../shared.ts';
import { parseDuration } from '../taskmgr/duration.ts';
import { HttpError, parseOr400, KEYS_BODY_LIMIT } from './errors.ts';
import { SharedAnswers } from './shared-answers.ts';
import type { Guard } from './guard.ts';

const statusList = z
  .string()
  .transform((s) =>
    s
      .split(',')
      .map((x) => x.trim())
      .filter(Boolean),
  )
  .pipe(z.array(z.enum(TASK_STATUSES as unknown as [TaskStatus, ...TaskStatus[]])));
const isoDate = z.iso.datetime({ offset: true }).transform((s) => new Date(s));

const listQuery = z.strictObject({
  status: statusList.optional(),
  method: z.string().max(64).optional(),
  dataSource: z.string().max(255).optional(),
  recordKey: z.string().max(512).optional(),
  text: z.string().max(255).optional(),
  from: isoDate.optional(),
  to: isoDate.optional(),
  pageSize: z.coerce.number().int().min(1).max(200).optional(),
  pageToken: z.string().max(4096).optional(),
});

const flushBody = z.union([
  z.strictObject({ failed: z.literal(true) }),
  z.strictObject({
    // The page's button: "Flush tasks older than 24 hours".
    completedOlderThan: z.string().refine((s) => {
      try {
        parseDuration(s);
        return true;
      } catch {
        return false;
      }
    }, 'must be a duration such as "24 hours"'),
  }),
]);

export function registerTaskRoutes(app: FastifyInstance, deps: { tasks: TaskClient; guard: Guard; temporalUiUrl?: string }) {
  const { tasks, guard } = deps;
  const uiLink = (taskId: string) =>
    deps.temporalUiUrl
      ? `${deps.temporalUiUrl.replace(/\/$/, '')}/namespaces/${encodeURIComponent(tasks.client.options.namespace)}/workflows/${encodeURIComponent(taskId)}`
      : undefined;

  const lists = new SharedAnswers<Awaited<ReturnType<TaskClient['listTasks']>>>().clearedOnChange(app);

  app.get('/api/methods', { onRequest: guard('read') }, async () => tasks.availableTasks());

  app.get('/api/tasks', { onRequest: guard('read') }, async (req) => {
    const q = parseOr400(listQuery, req.query);
    return lists.get(JSON.stringify(q), () =>
      tasks.listTasks({
        status: q.status,
        method: q.method,
        dataSourceKey: q.dataSource,
        recordKey: q.recordKey,
        text: q.text,
        from: q.from,
        to: q.to,
        pageSize: q.pageSize ?? 25,
        pageToken: q.pageToken,
      }),
    );
  });

  app.post('/api/tasks', { onRequest: guard('act'), bodyLimit: KEYS_BODY_LIMIT }, async (req, reply) => {
    const body = req.body;
    if (typeof body !== 'object' || body === null || Array.isArray(body))
      throw new HttpError(400, 'send the task as a JSON object: { "method": ..., ... }', { field: 'body' });
    if ('loop' in body) throw new HttpError(400, 'unknown field "loop"', { field: 'loop' });
    const admission = await tasks.addTask(body as Parameters<TaskClient['addTask']>[0]);
    if (admission.admissionPending) {
      // Started, not yet admitted: no worker polls. 202: it runs (or merges) when one comes.
      void reply.status(202);
      return { taskId: admission.taskId, deduplicated: false, admissionPending: true, message: noWorkerMessage('added', tasks.taskQueue) };
    }
    void reply.status(admission.deduplicatedInto ? 200 : 201);
    return { taskId: admission.deduplicatedInto ?? admission.taskId, deduplicated: Boolean(admission.deduplicatedInto) };
  });

  // Sub-routes first: task ids contain ':' and '/', so clients encode them (encodeURIComponent).
  app.post('/api/tasks/flush', { onRequest: guard('act') }, async (req) => {
    const body = parseOr400(flushBody, req.body);
    const deleted =
      'failed' in body
        ? await tasks.flushTasks({ failed: true })
        : await tasks.flushTasks({ completedBefore: new Date(Date.now() - parseDuration(body.completedOlderThan)) });
    return { deleted };
  });

  app.get<{ Params: { id: string } }>('/api/tasks/:id', { onRequest: guard('read') }, async (req) => {
    const info = await tasks.getTask(req.params.id);
    return { ...info, temporalUiUrl: uiLink(info.taskId) };
  });

  app.post<{ Params: { id: string } }>('/api/tasks/:id/cancel', { onRequest: guard('act') }, async (req) => {
    await tasks.cancelTask(req.params.id);
    return { taskId: req.params.id, cancelled: true };
  });

  app.post<{ Params: { id: string } }>('/api/tasks/:id/reschedule', { onRequest: guard('act') }, async (req) => {
    const body = parseOr400(z.strictObject({ scheduledFor: z.string().min(1).max(100) }), req.body);
    return tasks.rescheduleTask(req.params.id, body.scheduledFor);
  });

  app.post<{ Params: { id: string } }>('/api/tasks/:id/retry', { onRequest: guard('act') }, async (req, reply) => {
    const taskId = await tasks.retryTask(req.params.id);
    void reply.status(201);
    return { taskId };
  });
}
