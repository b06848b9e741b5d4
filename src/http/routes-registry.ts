/** /api/data-sources and /api/records: enough of the registry to run it from the admin page. */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { WorkflowNotFoundError } from '@temporalio/client';
import type { Pool } from '../db/pool.ts';
import type { RegistryClient } from '../client/registry.ts';
import type { TaskClient } from '../client/task-client.ts';
import { getRecord, listDataSources, searchRecords } from '../registry/browse.ts';
import { refreshDerived } from '../registry/derived.ts';
import { listQuarantined, retryQuarantined } from '../registry/quarantine.ts';
import { RECORD_CLASSES, RECORD_STATUSES, checkRecordKey, type RecordStatus } from '../shared.ts';
import { HttpError, KEYS_BODY_LIMIT, parseOr400 } from './errors.ts';
import type { Guard } from './guard.ts';
import { SharedAnswers } from './shared-answers.ts';

/** A Temporal run id: a UUID. */
const RUN_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const recordQuery = z.strictObject({
  q: z.string().max(500).optional(),
  dataSource: z.string().max(255).optional(),
  class: z.enum(RECORD_CLASSES as unknown as [string, ...string[]]).optional(),
  status: z.enum(RECORD_STATUSES as unknown as [string, ...string[]]).optional(),
  quality: z.coerce
    .number()
    .int()
    .refine((n) => [0, 1, 2, 3, 5].includes(n), 'must be one of 0, 1, 2, 3, 5')
    .optional(),
  limit: z.coerce.number().int().min(1).max(200).default(25),
  offset: z.coerce.number().int().min(0).max(1_000_000).default(0),
});

function recordKeyParam(key: string): string {
  const bad = checkRecordKey(key);
  if (bad) throw new HttpError(400, bad, { field: 'key' });
  return key;
}

interface DataSourceWork {
  runningTasks: number;
  /** WAITING and due: for a prerequisite or a slot. */
  queuedTasks: number;
  /** WAITING for a time still ahead; the earliest such time. */
  scheduledTasks: number;
  nextScheduledFor?: string;
}

/**
 * The open tasks of every data source, from one visibility query for all (a real cluster allows 10
 * per second per namespace), grouped here. Counts stop at the first 1,000 open tasks.
 */
async function backgroundWork(tasks: TaskClient, now: number): Promise<Map<string, DataSourceWork>> {
  const { tasks: open } = await tasks.listTasks({ status: ['WAITING', 'STARTED'], pageSize: 1000 });
  const work = new Map<string, DataSourceWork>();
  for (const t of open) {
    if (!t.dataSourceKey) continue;
    const w = work.get(t.dataSourceKey) ?? { runningTasks: 0, queuedTasks: 0, scheduledTasks: 0 };
    work.set(t.dataSourceKey, w);
    if (t.status === 'STARTED') w.runningTasks += 1;
    else if (t.scheduledFor && Date.parse(t.scheduledFor) > now) {
      w.scheduledTasks += 1;
      if (!w.nextScheduledFor || Date.parse(t.scheduledFor) < Date.parse(w.nextScheduledFor)) w.nextScheduledFor = t.scheduledFor;
    } else w.queuedTasks += 1;
  }
  return work;
}

export function registerRegistryRoutes(app: FastifyInstance, deps: { pool: Pool; registry: RegistryClient; tasks: TaskClient; guard: Guard }) {
  const { pool, registry, tasks, guard } = deps;
  // The data sources page of every viewer polls; they share one list of open tasks for a moment.
  const openWork = new SharedAnswers<Map<string, DataSourceWork>>().clearedOnChange(app);

  app.get('/api/data-sources', { onRequest: guard('read') }, async () => {
    const [sources, work] = await Promise.all([listDataSources(pool), openWork.get('all', () => backgroundWork(tasks, Date.now()))]);
    // In progress: an unfinished follow-up, or a task running or due; a task scheduled for later is not.
    return sources.map((s) => {
      const w = work.get(s.key) ?? { runningTasks: 0, queuedTasks: 0, scheduledTasks: 0 };
      return { ...s, ...w, backgroundWorkInProgress: s.openOperations > 0 || w.runningTasks > 0 || w.queuedTasks > 0 };
    });
  });

  app.get('/api/records', { onRequest: guard('read') }, async (req) => {
    const q = parseOr400(recordQuery, req.query);
    return searchRecords(pool, {
      q: q.q?.trim() || undefined,
      dataSourceKey: q.dataSource,
      recordClass: q.class,
      status: q.status,
      qualityLevel: q.quality,
      limit: q.limit,
      offset: q.offset,
    });
  });

  app.get<{ Params: { key: string } }>('/api/records/:key', { onRequest: guard('read') }, async (req) => {
    const key = recordKeyParam(req.params.key);
    const record = await getRecord(pool, key);
    if (!record) throw new HttpError(404, `record ${JSON.stringify(key)} does not exist`);
    return record;
  });

  // Answers once the record is gone and its follow-up is durably started; the page then polls /deletion.
  app.delete<{ Params: { key: string } }>('/api/records/:key', { onRequest: guard('act') }, async (req, reply) => {
    const outcome = await registry.deleteRecord(recordKeyParam(req.params.key));
    void reply.status(202);
    return outcome;
  });

  // ?runId= (from the DELETE's answer) follows that deletion even when the key is deleted again later.
  app.get<{ Params: { key: string }; Querystring: { runId?: string } }>('/api/records/:key/deletion', { onRequest: guard('read') }, async (req) => {
    const key = recordKeyParam(req.params.key);
    const runId = req.query.runId;
    if (runId !== undefined && !RUN_ID.test(runId))
      throw new HttpError(400, `runId ${JSON.stringify(runId.slice(0, 80))} is not a run id (a UUID, as the DELETE answered)`, { field: 'runId' });
    try {
      return await registry.deletionProgress(key, runId);
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) throw new HttpError(404, `no deletion of ${JSON.stringify(key)} is known`);
      throw err;
    }
  });

  app.post<{ Params: { key: string } }>('/api/records/:key/status', { onRequest: guard('act') }, async (req, reply) => {
    const key = recordKeyParam(req.params.key);
    const body = parseOr400(z.strictObject({ status: z.enum(RECORD_STATUSES as unknown as [string, ...string[]]) }), req.body);
    const outcome = await registry.changeStatus(key, body.status as RecordStatus);
    void reply.status(202);
    return outcome;
  });

  app.get('/api/quarantine', { onRequest: guard('read') }, async (req) => {
    const q = parseOr400(
      z.strictObject({ dataSource: z.string().max(255).optional(), limit: z.coerce.number().int().min(1).max(1000).default(100) }),
      req.query,
    );
    return listQuarantined(pool, { dataSourceKey: q.dataSource, limit: q.limit });
  });

  // After a fix: each record that now goes through leaves the quarantine.
  app.post('/api/quarantine/retry', { onRequest: guard('act'), bodyLimit: KEYS_BODY_LIMIT }, async (req) => {
    const body = parseOr400(z.strictObject({ keys: z.array(z.string().min(1).max(512)).max(10_000).optional() }), req.body ?? {});
    return retryQuarantined(pool, refreshDerived, body.keys);
  });
}
