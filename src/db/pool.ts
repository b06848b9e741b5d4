/** PostgreSQL connection pool and the transaction helper every writer uses. */
import pg from 'pg';
import type { Logger } from 'pino';

export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;
export type Queryable = Pick<pg.Pool, 'query'>;

// bigint ids come back as strings by default; registry ids fit comfortably in a JS number.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));

/** Connections a pool opens at most unless told otherwise. */
export const DEFAULT_POOL_CONNECTIONS = 10;

export function createPool(connectionString: string, opts: { max?: number; logger?: Logger } = {}): Pool {
  const pool = new pg.Pool({
    connectionString,
    max: opts.max ?? DEFAULT_POOL_CONNECTIONS,
    application_name: 'registry-taskmgr',
    // Fail a connect attempt instead of hanging when the server is away; callers retry.
    connectionTimeoutMillis: 10_000,
    // Awaited before the pool hands the connection out; a refusal leaves the connection usable.
    onConnect: (client) =>
      client.query(ABANDONED_QUERY_CHECK).then(
        () => undefined,
        (err: Error) => warnOnce(opts.logger, err),
      ),
  });
  // An idle client losing its server (restart, network) must not crash the process.
  pool.on('error', (err) => opts.logger?.warn({ err: err.message }, 'idle PostgreSQL connection lost'));
  return pool;
}

/**
 * Has PostgreSQL look every 5 s whether the client of a running query is still there (PostgreSQL
 * 14+ on a platform that can tell, as Linux; skipped before 14). The session of a process that died
 * or was stopped by force (its query waiting on a row lock, say) is then ended and its transaction
 * rolled back within seconds, so the locks it took before it waited do not hold back the task's
 * retry on another worker; without it, it waits on until it gets its lock, and only then finds its
 * client gone. (Behind a pooler in transaction mode, a session setting does not stay with the client.)
 */
const ABANDONED_QUERY_CHECK = `SELECT set_config('client_connection_check_interval', '5s', false)
                                WHERE current_setting('server_version_num')::int >= 140000`;

let checkRefused = false;
/** Says once per process that PostgreSQL refused the check (a platform that cannot tell a client is gone). */
function warnOnce(logger: Logger | undefined, err: Error) {
  if (checkRefused) return;
  checkRefused = true;
  logger?.warn({ err: err.message }, 'PostgreSQL refused client_connection_check_interval: the queries of a worker stopped by force run on until they end');
}

/** How long a closing process waits for connections still in use. */
const POOL_END_WAIT_MS = 3000;

/**
 * Closes the pool. A connection still in use after POOL_END_WAIT_MS (a task module deaf to its
 * cancel, stuck in a query, after the worker's forced stop) is not waited for: the process's exit
 * closes it, and PostgreSQL ends its query and rolls its transaction back within seconds
 * (ABANDONED_QUERY_CHECK). Waiting would outlast a deploy's grace period.
 */
export async function endPool(pool: Pool, logger?: Logger): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const gaveUp = new Promise<'gave up'>((resolve) => (timer = setTimeout(() => resolve('gave up'), POOL_END_WAIT_MS)));
  const how = await Promise.race([pool.end().then(() => 'ended' as const), gaveUp]);
  clearTimeout(timer);
  if (how === 'gave up')
    logger?.warn({ inUse: pool.totalCount - pool.idleCount }, 'PostgreSQL connections still in use by work that did not stop: leaving them to the exit');
}

/** Runs fn in a transaction: COMMIT on success, ROLLBACK on any error. */
export async function withTransaction<T>(pool: Pool, fn: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  // A connection lost mid-transaction also reaches the pending query; without a listener the
  // client's 'error' event would be thrown as an uncaught exception and end the process.
  const lost = () => undefined;
  client.on('error', lost);
  let result: T;
  try {
    await client.query('BEGIN');
    result = await fn(client);
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    // A connection that broke (no SQLSTATE, or a connection/shutdown class) is dropped, not reused.
    const code = (err as { code?: string }).code;
    client.off('error', lost);
    client.release(!code || /^(08|57)/.test(code) ? (err as Error) : undefined);
    throw err;
  }
  client.off('error', lost);
  client.release();
  return result;
}
