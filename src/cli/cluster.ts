/**
 * `taskmgr cluster` (`npm run cluster`): the production shape on one machine. PostgreSQL (embedded
 * unless DATABASE_URL), a Temporal cluster of separate processes on it (src/cluster), the Web UI
 * server, N worker processes and the task manager server, all on loopback. Ctrl-C stops them in
 * order: the page, the workers (they finish what they run), the Web UI, Temporal, PostgreSQL.
 */
import path from 'node:path';
import type { Command } from 'commander';
import { Connection } from '@temporalio/client';
import { loadConfig, PROJECT_ROOT, type Config } from '../config.ts';
import { createPool } from '../db/pool.ts';
import { migrate } from '../db/migrate.ts';
import { startEmbeddedPostgres } from '../dev/embedded-postgres.ts';
import { findGoTool, SQL_TOOL, TEMPORAL_SERVER, UI_SERVER } from '../dev/go-tools.ts';
import { createLogger, type Logger } from '../log.ts';
import { isRegistryEmpty, seedRegistry } from '../registry/seed.ts';
import { DEFAULT_PORTS, type SqlStore } from '../cluster/layout.ts';
import { startProcess, untilHttpOk, type ManagedProcess } from '../cluster/processes.ts';
import { ensureRegistryRole, prepareTemporalDatabases, REGISTRY_ROLE, TEMPORAL_ROLE } from '../cluster/schema.ts';
import { startTemporalCluster } from '../cluster/temporal-cluster.ts';
import { intOption, shellQuote, stopSignal } from './common.ts';
import { authFiles, MAX_TOKEN_DAYS, mintToken, parsePermission, prepareClusterAuth, ROLES, serveJwks, TLS_SERVER_NAME } from '../cluster/auth.ts';
import { keptSecret } from '../kept-secret.ts';
import { pollerIdentities } from '../client/worker-wait.ts';

const TASKMGR_BIN = path.join(PROJECT_ROOT, 'bin', 'taskmgr.js');

export function addClusterCommand(program: Command) {
  program
    .command('cluster')
    .description(
      'run a Temporal cluster (frontend, matching, worker, two history processes) on PostgreSQL with its Web UI, N worker processes and the task manager page, on this machine',
    )
    .option('--workers <n>', 'worker processes', intOption('--workers', 1, 16), 2)
    .option('--no-auth', 'serve the frontend without TLS and without JWT authorization (not for production)')
    .action(async (opts: { workers: number; auth: boolean }) => runCluster(opts.workers, opts.auth));
  program
    .command('cluster-token')
    .description("mint a token for the cluster's frontend (TEMPORAL_API_KEY), signed with the cluster's key in DATA_DIR/cluster/auth")
    .option(
      '--permission <namespace:role>',
      `what the token may do; role one of ${ROLES.join(', ')}; repeatable (default: <namespace>:write)`,
      (v: string, all: string[] = []) => [...all, parsePermission(v)],
    )
    .option('--subject <name>', 'who the token is for (the server logs it)', 'operator')
    .option('--days <n>', 'days until it expires', intOption('--days', 1, MAX_TOKEN_DAYS), 30)
    .action(async (opts: { permission?: string[]; subject: string; days: number }) => {
      const config = loadConfig();
      const files = authFiles(path.join(config.dataDir, 'cluster', 'auth'));
      console.log(await mintToken(files, { subject: opts.subject, permissions: opts.permission ?? [`${config.temporal.namespace}:write`], days: opts.days }));
    });
}

/** TLS and JWT on the public frontend: the files, the JWKS served to it, and the settings for our own processes. */
async function secureFrontend(clusterDir: string, namespace: string, stops: Stops) {
  const files = await prepareClusterAuth(path.join(clusterDir, 'auth'));
  const jwks = await serveJwks(files);
  stops.push(() => jwks.close());
  // Minted at every start; a year is longer than any run of this one-machine cluster.
  const token = await mintToken(files, { subject: 'registry-taskmgr', permissions: [`${namespace}:write`], days: MAX_TOKEN_DAYS });
  const security = { certFile: files.certFile, keyFile: files.keyFile, caFile: files.caFile, jwksUrl: jwks.url, serverName: TLS_SERVER_NAME };
  const clientEnv = { TEMPORAL_API_KEY: token, TEMPORAL_TLS_SERVER_CA_CERT_PATH: files.caFile, TEMPORAL_TLS_SERVER_NAME: TLS_SERVER_NAME };
  return { files, security, clientEnv };
}

/**
 * The registry's database, and an admin URL on the same server for the roles and Temporal's
 * databases. On the embedded PostgreSQL the registry connects as a role of its own, not as the
 * superuser; with DATABASE_URL the operator chose the role.
 */
async function registryDatabase(config: Config, logger: Logger, stops: Stops, clusterDir: string) {
  if (config.databaseUrl) {
    const admin = new URL(config.databaseUrl);
    admin.pathname = '/postgres';
    return { url: config.databaseUrl, adminUrl: admin.toString(), embedded: false };
  }
  const db = await startEmbeddedPostgres({ dir: path.join(config.dataDir, 'pg'), port: config.embeddedPgPort, logger });
  stops.push(() => db.stop());
  const admin = new URL(db.url);
  const database = admin.pathname.slice(1);
  const password = keptSecret(path.join(clusterDir, 'registry-db-password'));
  await ensureRegistryRole(db.url, database, password);
  const url = new URL(db.url);
  url.username = REGISTRY_ROLE;
  url.password = password; // base64url: nothing to escape
  admin.pathname = '/postgres';
  return { url: url.toString(), adminUrl: admin.toString(), embedded: true };
}

type Stops = (() => Promise<void>)[];
type RegistryDatabase = Awaited<ReturnType<typeof registryDatabase>>;
type StartedCluster = Awaited<ReturnType<typeof startTemporalCluster>>;

async function runCluster(workerCount: number, withAuth: boolean) {
  const config = loadConfig();
  const logger = createLogger(config.logLevel);
  const stops: Stops = [];
  let stopping = false;
  const clusterDir = path.join(config.dataDir, 'cluster');
  try {
    const db = await registryDatabase(config, logger, stops, clusterDir);
    await migrate(db.url, logger);
    const pool = createPool(db.url, { logger });
    if (await isRegistryEmpty(pool)) await seedRegistry(pool, { records: config.seed.records, dataSources: config.seed.dataSources }, logger);
    await pool.end();
    const { cluster, secured } = await startTemporal(config, db, withAuth, clusterDir, stops, logger);
    const env = {
      ...process.env,
      DATABASE_URL: db.url,
      TEMPORAL_ADDRESS: cluster.address,
      TEMPORAL_UI_URL: cluster.uiUrl,
      DATA_DIR: config.dataDir,
      ...secured?.clientEnv,
    };
    const taskmgr = await startTaskmgrProcesses(config, env, workerCount, cluster, stops);
    console.log(clusterBanner(config, db, cluster, secured, taskmgr));
    for (const p of [...taskmgr.workers, taskmgr.server, ...cluster.processes.values()]) {
      void p.exited.then((code) => stopping || logger.warn({ process: p.name, code, log: p.logFile }, 'a cluster process exited'));
    }
    await stopSignal(logger);
  } finally {
    stopping = true;
    for (const stop of stops.reverse()) await stop().catch((err: Error) => logger.warn({ err: err.message }, 'stop failed'));
    logger.info('stopped');
  }
}

/** Temporal's databases on the registry's server, then the cluster's services (behind TLS and tokens unless --no-auth). */
async function startTemporal(config: Config, db: RegistryDatabase, withAuth: boolean, clusterDir: string, stops: Stops, logger: Logger) {
  const binaries = { server: findGoTool(TEMPORAL_SERVER, { config }), sqlTool: findGoTool(SQL_TOOL, { config }), ui: findGoTool(UI_SERVER, { config }) };
  const admin = new URL(db.adminUrl);
  const store: SqlStore = {
    host: admin.hostname,
    port: Number(admin.port || 5432),
    user: TEMPORAL_ROLE,
    databases: { persistence: 'temporal', visibility: 'temporal_visibility' },
  };
  const password = keptSecret(path.join(clusterDir, 'temporal-db-password'));
  await prepareTemporalDatabases({ adminUrl: db.adminUrl, sqlTool: binaries.sqlTool, store, password, logger });
  const ports = { ...DEFAULT_PORTS, frontend: config.temporal.devPort, frontendHttp: config.temporal.httpPort, ui: config.temporal.uiPort };
  const secured = withAuth ? await secureFrontend(clusterDir, config.temporal.namespace, stops) : undefined;
  const cluster = await startTemporalCluster({
    security: secured?.security,
    serverBinary: binaries.server,
    uiServerBinary: binaries.ui,
    dir: clusterDir,
    ports,
    store,
    password,
    historyShards: config.temporal.historyShards,
    namespace: config.temporal.namespace,
    uiWriteActions: config.temporal.uiWriteActions,
    logger,
  });
  stops.push(() => cluster.stop());
  return { cluster, secured };
}

/** N `taskmgr worker` processes and one `taskmgr serve`, started and waited for until they poll and answer. */
async function startTaskmgrProcesses(config: Config, env: NodeJS.ProcessEnv, workerCount: number, cluster: StartedCluster, stops: Stops) {
  const logDir = path.join(config.dataDir, 'cluster', 'logs');
  const workers: ManagedProcess[] = [];
  for (let i = 1; i <= workerCount; i++) {
    workers.push(
      startProcess(`taskmgr-worker-${i}`, process.execPath, [TASKMGR_BIN, 'worker'], {
        logDir,
        env: { ...env, METRICS_ADDRESS: metricsAt(config, i) ?? 'off' },
      }),
    );
  }
  stops.push(async () => void (await Promise.all(workers.map((w) => w.stop(60_000)))));
  const server = startProcess('taskmgr-serve', process.execPath, [TASKMGR_BIN, 'serve'], { logDir, env });
  stops.push(() => server.stop());
  const pageUrl = `http://${config.http.host}:${config.http.port}`;
  await untilHttpOk(`${pageUrl}/api/health`, server, 60_000);
  await untilWorkersPoll(cluster.internalAddress, config.temporal.namespace, config.temporal.taskQueue, workers, 120_000);
  return { workers, server, pageUrl, logDir };
}

/** Each worker its own metrics endpoint: METRICS_ADDRESS's port, the next one, and so on. */
function metricsAt(config: Config, workerNumber: number): string | undefined {
  return config.metricsAddress?.replace(/:(\d+)$/, (_, port: string) => `:${Number(port) + workerNumber - 1}`);
}

/** What is running where, printed once everything answers. */
function clusterBanner(
  config: Config,
  db: RegistryDatabase,
  cluster: StartedCluster,
  secured: Awaited<ReturnType<typeof secureFrontend>> | undefined,
  taskmgr: Awaited<ReturnType<typeof startTaskmgrProcesses>>,
): string {
  const { workers, pageUrl, logDir } = taskmgr;
  const metrics = config.metricsAddress ? `; Prometheus metrics at ${workers.map((_, i) => `http://${metricsAt(config, i + 1)}/metrics`).join(', ')}` : '';
  return [
    '',
    `registry-taskmgr cluster is running (logs in ${logDir}).`,
    `  Temporal:     ${cluster.address} (frontend${secured ? ', TLS + JWT' : ', plain: --no-auth'}; history x2 sharing ${config.temporal.historyShards} shards, matching, worker; namespace ${config.temporal.namespace})`,
    `  Temporal HTTP API: ${cluster.httpUrl}/api/v1/namespaces/${config.temporal.namespace}/workflows (plain JSON, see the README)`,
    `  Temporal UI:  ${cluster.uiUrl}/namespaces/${config.temporal.namespace}/workflows`,
    `  Workers:      ${workers.length} processes (pids ${workers.map((w) => w.child.pid).join(', ')})${metrics}`,
    `  Task manager: ${pageUrl}/  (user ${config.http.adminUser}, password ${config.http.adminPassword ? 'from ADMIN_PASSWORD' : `in ${path.join(config.dataDir, 'admin-password')}`})`,
    `  PostgreSQL:   ${db.embedded ? `embedded on 127.0.0.1:${config.embeddedPgPort}, data in ${path.join(config.dataDir, 'pg')}; the registry connects as role ${REGISTRY_ROLE}` : 'DATABASE_URL'}; Temporal's databases temporal, temporal_visibility (role ${TEMPORAL_ROLE})`,
    ...(secured ? connectHints(cluster.address, secured.files.caFile) : []),
    '',
    'Ctrl-C stops everything in order; the next start reuses the data.',
  ].join('\n');
}

/** How taskmgr, registry code and the temporal CLI connect to a secured frontend. */
function connectHints(address: string, caFile: string): string[] {
  return [
    '',
    'The frontend asks for TLS and a token. From another terminal:',
    `  export TEMPORAL_ADDRESS=${address} TEMPORAL_TLS_SERVER_CA_CERT_PATH=${shellQuote(caFile)} TEMPORAL_TLS_SERVER_NAME=${TLS_SERVER_NAME}`,
    '  export TEMPORAL_API_KEY=$(npx taskmgr cluster-token)        # default:write for 30 days; --permission default:read, --days N',
    `  temporal workflow list --tls-ca-path ${shellQuote(caFile)} --tls-server-name ${TLS_SERVER_NAME}   # the temporal CLI reads TEMPORAL_API_KEY too`,
  ];
}

/** Waits until every worker process polls the task queue (each builds its workflow bundle first), failing if one exits. */
async function untilWorkersPoll(address: string, namespace: string, taskQueue: string, workers: ManagedProcess[], timeoutMs: number) {
  const connection = await Connection.connect({ address });
  try {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const dead = workers.find((w) => !w.running());
      if (dead) throw new Error(`${dead.name} exited before it polled (log ${dead.logFile}):\n${dead.tail()}`);
      const polling = await pollerIdentities({ workflowService: connection.workflowService, options: { namespace } }, taskQueue, 'workflow');
      if (new Set(polling).size >= workers.length) return;
      if (Date.now() > deadline)
        throw new Error(`the workers did not all poll ${taskQueue} within ${timeoutMs / 1000} s (logs in ${path.dirname(workers[0]!.logFile)})`);
      await new Promise((r) => setTimeout(r, 500));
    }
  } finally {
    await connection.close();
  }
}
