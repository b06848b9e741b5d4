/**
 * What the task manager keeps in PostgreSQL beside its workflows: the record keys each task names
 * (task_keys) and the WAITING tasks' prerequisites (task_dependants). Idempotent writes throughout:
 * activities that call these may be retried.
 */
import type { Queryable } from '../db/pool.ts';
import { withTransaction, type Pool } from '../db/pool.ts';

/** Stores a task's keys (a retry or a second call adds nothing twice). */
export async function storeTaskKeys(db: Queryable, taskId: string, keys: readonly string[]): Promise<void> {
  if (keys.length === 0) return;
  await db.query('INSERT INTO task_keys (task_id, record_key) SELECT $1, k FROM unnest($2::text[]) AS k ON CONFLICT DO NOTHING', [taskId, keys]);
}

export async function countTaskKeys(db: Queryable, taskId: string): Promise<number> {
  const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM task_keys WHERE task_id = $1', [taskId]);
  return rows[0]!.n;
}

export async function loadTaskKeys(db: Queryable, taskId: string): Promise<string[]> {
  const { rows } = await db.query<{ record_key: string }>('SELECT record_key FROM task_keys WHERE task_id = $1 ORDER BY record_key', [taskId]);
  return rows.map((r) => r.record_key);
}

/** True when every key of `taskId` is also a key of `coveringTaskId`. */
export async function keysCoveredBy(db: Queryable, taskId: string, coveringTaskId: string): Promise<boolean> {
  const { rows } = await db.query<{ missing: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM task_keys a WHERE a.task_id = $1
                       AND NOT EXISTS (SELECT 1 FROM task_keys c WHERE c.task_id = $2 AND c.record_key = a.record_key)) AS missing`,
    [taskId, coveringTaskId],
  );
  return !rows[0]!.missing;
}

/** The task holding the WAITING slot of (method, data source), if any. */
export async function waitingSlotHolder(db: Queryable, method: string, dataSourceKey: string | undefined): Promise<string | undefined> {
  const { rows } = await db.query<{ task_id: string }>('SELECT task_id FROM task_claims WHERE method = $1 AND data_source_key = $2', [
    method,
    dataSourceKey ?? '',
  ]);
  return rows[0]?.task_id;
}

/** True when `taskId` covers these keys: it names no keys (its whole data source), or all of them. */
export async function keysCover(db: Queryable, taskId: string, keys: readonly string[] | undefined): Promise<boolean> {
  const { rows } = await db.query<{ holder_keys: number; missing: number }>(
    `SELECT (SELECT count(*)::int FROM task_keys WHERE task_id = $1) AS holder_keys,
            (SELECT count(*)::int FROM unnest($2::text[]) k WHERE NOT EXISTS (SELECT 1 FROM task_keys t WHERE t.task_id = $1 AND t.record_key = k)) AS missing`,
    [taskId, keys ?? []],
  );
  const { holder_keys: holderKeys, missing } = rows[0]!;
  return holderKeys === 0 || (keys !== undefined && keys.length > 0 && missing === 0);
}

/** The newest tasks (at most `limit`) that name a record key. */
export async function tasksNamingKey(db: Queryable, recordKey: string, limit: number): Promise<string[]> {
  const { rows } = await db.query<{ task_id: string }>('SELECT task_id FROM task_keys WHERE record_key = $1 ORDER BY added_at DESC LIMIT $2', [
    recordKey,
    limit,
  ]);
  return rows.map((r) => r.task_id);
}

/** Removes what is kept for tasks that are gone (flushed). */
export async function forgetTasks(db: Queryable, taskIds: readonly string[]): Promise<void> {
  if (taskIds.length === 0) return;
  await db.query('DELETE FROM task_keys WHERE task_id = ANY($1::text[])', [taskIds]);
  await db.query('DELETE FROM task_dependants WHERE prerequisite_id = ANY($1::text[]) OR dependant_id = ANY($1::text[])', [taskIds]);
  await db.query('DELETE FROM task_outcomes WHERE task_id = ANY($1::text[])', [taskIds]);
}

/** Serialises a task's registrations with its end (a transaction-scoped lock per task id). */
const lockTask = (tx: Queryable, taskId: string) => tx.query("SELECT pg_advisory_xact_lock(hashtextextended('task:' || $1, 0))", [taskId]);

/**
 * Serialises registrations with each other: two that would close a cycle between them (A waits for
 * B while B registers with A) each read the graph without the other's uncommitted edge, so
 * per-task locks let both in and both wait for ever. Ending a task only removes edges, so it does
 * not take this lock.
 */
const lockDependencyGraph = (tx: Queryable) => tx.query("SELECT pg_advisory_xact_lock(hashtextextended('task-dependency-graph', 0))");

export interface TaskOutcome {
  status: string;
  error?: string;
}

/**
 * Registers a WAITING dependant with its prerequisite. Returns the chain when the prerequisite
 * (through the prerequisites it waits for itself) leads back to the dependant: then nothing is registered.
 */
export async function registerDependant(pool: Pool, prerequisiteId: string, dependantId: string): Promise<{ cycle?: string[]; ended?: TaskOutcome }> {
  return withTransaction(pool, async (tx) => {
    await lockDependencyGraph(tx);
    await lockTask(tx, prerequisiteId);
    const cycle = await cycleThrough(tx, prerequisiteId, dependantId);
    if (cycle) return { cycle };
    // Registered even when the prerequisite has ended: the row keeps it from retention while we wait.
    await tx.query('INSERT INTO task_dependants (prerequisite_id, dependant_id) VALUES ($1, $2) ON CONFLICT DO NOTHING', [prerequisiteId, dependantId]);
    const ended = await tx.query<{ status: string; error: string | null }>('SELECT status, error FROM task_outcomes WHERE task_id = $1', [prerequisiteId]);
    return ended.rows[0] ? { ended: { status: ended.rows[0].status, error: ended.rows[0].error ?? undefined } } : {};
  });
}

/**
 * The chain from `prerequisiteId` through the prerequisites it waits for itself back to
 * `dependantId`, if there is one: registering the dependant would close (or has closed) a cycle.
 * The walk collects edges, not paths: UNION drops an edge seen before, so it ends on any stored
 * cycle, and a chain of n links costs n index lookups (a path per row would cost n² and needed a
 * length cap, past which a cycle went unseen).
 */
export async function cycleThrough(db: Queryable, prerequisiteId: string, dependantId: string): Promise<string[] | undefined> {
  const { rows } = await db.query<{ dependant_id: string; prerequisite_id: string }>(
    `WITH RECURSIVE up(dependant_id, prerequisite_id) AS (
       SELECT $2::text, $1::text
       UNION
       SELECT d.dependant_id, d.prerequisite_id FROM task_dependants d JOIN up ON d.dependant_id = up.prerequisite_id)
     SELECT dependant_id, prerequisite_id FROM up WHERE EXISTS (SELECT 1 FROM up WHERE prerequisite_id = $2)`,
    [prerequisiteId, dependantId],
  );
  // The edges come only when one leads back (the common case sends nothing).
  return rows.length ? chainBetween(rows, dependantId) : undefined;
}

/** The shortest chain of edges (dependant -> prerequisite) from `dependantId` back to itself. */
function chainBetween(edges: { dependant_id: string; prerequisite_id: string }[], dependantId: string): string[] {
  const prerequisites = new Map<string, string[]>();
  for (const e of edges) {
    const known = prerequisites.get(e.dependant_id);
    if (known) known.push(e.prerequisite_id);
    else prerequisites.set(e.dependant_id, [e.prerequisite_id]);
  }
  const cameFrom = new Map<string, string>();
  const queue = [dependantId];
  for (let i = 0; i < queue.length; i++) {
    for (const next of prerequisites.get(queue[i]!) ?? []) {
      if (next === dependantId) {
        const chain = [queue[i]!];
        for (let at = queue[i]!; at !== dependantId;) chain.push((at = cameFrom.get(at)!));
        return [dependantId, ...chain.reverse().slice(1), dependantId];
      }
      if (!cameFrom.has(next)) {
        cameFrom.set(next, queue[i]!);
        queue.push(next);
      }
    }
  }
  throw new Error(`chainBetween: no chain back to ${dependantId} among the edges given`);
}

/** A chain for a message: its ends, and how many links lie between when it is long (a failure message has a size limit). */
export function chainText(chain: readonly string[], ends = 5): string {
  if (chain.length <= 2 * ends + 1) return chain.join(' -> ');
  return [...chain.slice(0, ends), `(${chain.length - 2 * ends} more)`, ...chain.slice(-ends)].join(' -> ');
}

/**
 * Records how a task ended and returns its dependants to tell. `final` is false for a run of a
 * recurring task: the loop goes on, so later dependants wait for a later run.
 */
export async function recordOutcome(pool: Pool, taskId: string, outcome: TaskOutcome, final: boolean, run?: TaskRunEnd): Promise<string[]> {
  return withTransaction(pool, async (tx) => {
    await lockTask(tx, taskId);
    if (run) await recordRunEnd(tx, taskId, outcome.status, run);
    if (final) {
      await tx.query('INSERT INTO task_outcomes (task_id, status, error) VALUES ($1, $2, $3) ON CONFLICT (task_id) DO UPDATE SET status = $2, error = $3', [
        taskId,
        outcome.status,
        storableText(outcome.error) ?? null,
      ]);
      // Ended for good: it waits for nothing any more (a loop kept its registration through its runs).
      await unregisterDependant(tx, taskId);
    }
    return dependantsOf(tx, taskId);
  });
}

/**
 * A task's error is its module's text, and a refused input's method is the caller's: a NUL (which
 * PostgreSQL refuses in text) must not stop a task from ending.
 */
function storableText(text: string | undefined): string | undefined {
  return text?.replaceAll('\u0000', '\ufffd');
}

/** One run of a task ended (a recurring task ends a run each time): what the Health view charts. */
export interface TaskRunEnd {
  iteration: number;
  method: string;
  finishedAt: string;
  durationMs?: number;
}

/** Keeps a run's end once (a retried activity repeats it); HOURLY_REGISTRY_MAINTENANCE drops old ones (pruneHealthHistory). */
async function recordRunEnd(db: Queryable, taskId: string, status: string, run: TaskRunEnd): Promise<void> {
  await db.query(
    `INSERT INTO task_run_outcomes (task_id, iteration, method, status, finished_at, duration_ms)
     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`,
    [taskId, run.iteration, storableText(run.method), status, run.finishedAt, run.durationMs ?? null],
  );
}

/** The tasks waiting for `prerequisiteId`. */
export async function dependantsOf(db: Queryable, prerequisiteId: string): Promise<string[]> {
  const { rows } = await db.query<{ dependant_id: string }>('SELECT dependant_id FROM task_dependants WHERE prerequisite_id = $1 ORDER BY registered_at', [
    prerequisiteId,
  ]);
  return rows.map((r) => r.dependant_id);
}

/** A task no longer waits for its prerequisite (it started, failed or was cancelled). */
export async function unregisterDependant(db: Queryable, dependantId: string): Promise<void> {
  await db.query('DELETE FROM task_dependants WHERE dependant_id = $1', [dependantId]);
}

/** Of these tasks, the ones a WAITING task still names as its prerequisite (retention keeps them). */
export async function heldAsPrerequisites(db: Queryable, taskIds: readonly string[]): Promise<Map<string, string[]>> {
  if (taskIds.length === 0) return new Map();
  const { rows } = await db.query<{ prerequisite_id: string; dependant_id: string }>(
    'SELECT prerequisite_id, dependant_id FROM task_dependants WHERE prerequisite_id = ANY($1::text[])',
    [taskIds],
  );
  const held = new Map<string, string[]>();
  for (const r of rows) held.set(r.prerequisite_id, [...(held.get(r.prerequisite_id) ?? []), r.dependant_id]);
  return held;
}

/** WAITING tasks per method: a WAITING task holds its (method, data source) claim until it starts. */
export async function waitingByMethod(db: Queryable): Promise<Map<string, number>> {
  const { rows } = await db.query<{ method: string; n: number }>('SELECT method, count(*)::int AS n FROM task_claims GROUP BY method');
  return new Map(rows.map((r) => [r.method, r.n]));
}
