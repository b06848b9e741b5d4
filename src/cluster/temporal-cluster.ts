/**
 * A Temporal cluster on this machine, from the server binary built from its Go module: history
 * (two processes sharing the shards), matching, frontend and worker as separate processes, with
 * persistence and advanced visibility in PostgreSQL, the namespace and our search attributes
 * created through the operator API, and the Web UI server. Every port on loopback.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Connection, type ConnectionOptions } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time.js';
import type { Logger } from '../log.ts';
import { SEARCH_ATTRIBUTES } from '../shared.ts';
import {
  DB_PASSWORD_ENV,
  dynamicConfigYaml,
  LOCAL_NETWORK,
  serverConfigFile,
  serverProcesses,
  uiConfig,
  type ClusterPorts,
  type FrontendSecurity,
  type SqlStore,
} from './layout.ts';
import { startProcess, untilHttpOk, type ManagedProcess } from './processes.ts';

export interface TemporalClusterOptions {
  serverBinary: string;
  /** Omit to run without the Web UI (tests). */
  uiServerBinary?: string;
  /** Configs and logs go here (config/, logs/). */
  dir: string;
  ports: ClusterPorts;
  store: SqlStore;
  /** The database password: given to the server processes by environment, never written to their config. */
  password: string;
  historyShards: number;
  namespace: string;
  uiWriteActions: boolean;
  logger: Logger;
  logLevel?: string;
  startTimeoutMs?: number;
  /** PostgreSQL connections per server process and database (layout.ts's default otherwise). */
  connectionsPerStore?: number;
  /** TLS and JWT authorization on the public frontend; the server's services, the set-up and the Web UI use an internal frontend. */
  security?: ClusterSecurity;
}

export interface ClusterSecurity extends FrontendSecurity {
  /** The CA that signed the frontend's certificate, for our own readiness check. */
  caFile: string;
  serverName: string;
}

export interface TemporalCluster {
  /** The public frontend: over TLS, and asking for a token, when secured. */
  address: string;
  /** Where the server's own services reach a frontend: the internal one when secured (no authorization: loopback only). */
  internalAddress: string;
  httpUrl: string;
  uiUrl?: string;
  /** Server processes by name (history-1, history-2, matching, internal-frontend when secured, frontend, worker) and ui. */
  processes: Map<string, ManagedProcess>;
  /** Starts a stopped or killed server process again with its own config. */
  restart(name: string): Promise<void>;
  stop(): Promise<void>;
}

/** IndexedValueType numbers of the operator API (temporal.api.enums.v1). */
const INDEXED_VALUE_TYPES: Record<string, number> = { TEXT: 1, KEYWORD: 2, INT: 3, DOUBLE: 4, BOOL: 5, DATETIME: 6, KEYWORD_LIST: 7 };
/** Closed workflows are kept this long (the namespace's retention; the task manager's own flush is shorter). */
const RETENTION_DAYS = '7 days';

export async function startTemporalCluster(opts: TemporalClusterOptions): Promise<TemporalCluster> {
  const configDir = path.join(opts.dir, 'config');
  const logDir = path.join(opts.dir, 'logs');
  fs.mkdirSync(configDir, { recursive: true });
  const dynamicConfigFile = path.join(configDir, 'dynamicconfig.yaml');
  fs.writeFileSync(dynamicConfigFile, dynamicConfigYaml());
  const { security } = opts;
  const all = serverProcesses(opts.ports, { internalFrontend: Boolean(security) });
  for (const p of all) {
    const file = serverConfigFile({
      process: p,
      all,
      store: opts.store,
      historyShards: opts.historyShards,
      dynamicConfigFile,
      logLevel: opts.logLevel ?? 'warn',
      network: LOCAL_NETWORK,
      connectionsPerStore: opts.connectionsPerStore,
      security,
    });
    fs.writeFileSync(path.join(configDir, `${p.name}.yaml`), file);
  }
  const processes = new Map<string, ManagedProcess>();
  const launch = (name: string) => {
    const p = all.find((x) => x.name === name)!;
    const env = { ...process.env, [DB_PASSWORD_ENV]: opts.password };
    processes.set(
      name,
      startProcess(name, opts.serverBinary, ['--root', opts.dir, '--config', 'config', '--env', p.name, '--allow-no-auth', 'start', '--service', p.service], {
        logDir,
        env,
      }),
    );
  };
  const stop = async () => {
    for (const name of ['ui', ...all.map((p) => p.name).reverse()]) await processes.get(name)?.stop();
  };
  const address = `127.0.0.1:${opts.ports.frontend}`;
  const internalAddress = security ? `127.0.0.1:${opts.ports.internal.internalFrontend[0]}` : address;
  try {
    // The first process writes the cluster's metadata into a new database; the others would race it.
    launch(all[0]!.name);
    await untilListening(all[0]!.grpcPort, processes.get(all[0]!.name)!, opts.startTimeoutMs ?? 120_000);
    for (const p of all.slice(1)) launch(p.name);
    await untilReady({ address: internalAddress }, processes, opts.startTimeoutMs ?? 120_000);
    if (security) await untilReady(publicConnection(address, security), processes, opts.startTimeoutMs ?? 120_000);
    await ensureNamespace(internalAddress, opts.namespace, opts.logger);
    let uiUrl: string | undefined;
    if (opts.uiServerBinary) {
      const ui = uiConfig({ frontendAddress: internalAddress, uiPort: opts.ports.ui, namespace: opts.namespace, writeActions: opts.uiWriteActions });
      const uiRoot = path.join(opts.dir, 'ui');
      fs.mkdirSync(path.join(uiRoot, 'config'), { recursive: true });
      fs.writeFileSync(path.join(uiRoot, 'config', 'cluster.yaml'), JSON.stringify(ui, null, 2));
      processes.set('ui', startProcess('ui', opts.uiServerBinary, ['--root', uiRoot, '--config', 'config', '--env', 'cluster', 'start'], { logDir }));
      uiUrl = `http://127.0.0.1:${opts.ports.ui}`;
      await untilHttpOk(uiUrl, processes.get('ui')!, 30_000);
    }
    return {
      address,
      internalAddress,
      httpUrl: `${security ? 'https' : 'http'}://127.0.0.1:${opts.ports.frontendHttp}`,
      uiUrl,
      processes,
      async restart(name) {
        await processes.get(name)?.stop();
        launch(name);
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

async function untilListening(port: number, process: ManagedProcess, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!process.running()) throw new Error(`the Temporal ${process.name} process exited before it was ready (log ${process.logFile}):\n${process.tail()}`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    if (Date.now() > deadline)
      throw new Error(`the Temporal ${process.name} process did not listen on 127.0.0.1:${port} within ${timeoutMs / 1000} s (log ${process.logFile})`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** How we reach the public frontend of a secured cluster: TLS with its CA, no token (a health check needs none). */
function publicConnection(address: string, security: ClusterSecurity): ConnectionOptions & { address: string } {
  return { address, tls: { serverNameOverride: security.serverName, serverRootCACertificate: fs.readFileSync(security.caFile) } };
}

/** Waits until a frontend answers and every server process is still up. */
async function untilReady(target: ConnectionOptions & { address: string }, processes: Map<string, ManagedProcess>, timeoutMs: number) {
  const { address } = target;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const dead = [...processes.values()].find((p) => !p.running());
    if (dead) throw new Error(`the Temporal ${dead.name} process exited before the cluster was ready (log ${dead.logFile}):\n${dead.tail()}`);
    const connection = await Connection.connect({ ...target, connectTimeout: 1000 }).catch(() => undefined);
    try {
      if (
        connection &&
        (await connection.workflowService.getSystemInfo({}).then(
          () => true,
          () => false,
        ))
      )
        return;
    } finally {
      await connection?.close().catch(() => undefined);
    }
    if (Date.now() > deadline)
      throw new Error(
        `the Temporal cluster's frontend did not answer on ${address} within ${timeoutMs / 1000} s (logs in ${path.dirname([...processes.values()][0]!.logFile)})`,
      );
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** Registers the namespace and our search attributes if missing, and waits until a list query by them works. */
async function ensureNamespace(address: string, namespace: string, logger: Logger) {
  const connection = await Connection.connect({ address });
  try {
    const { workflowService: wf, operatorService: op } = connection;
    const known = await wf.describeNamespace({ namespace }).then(
      () => true,
      () => false,
    );
    if (!known) {
      logger.info({ namespace }, 'registering the namespace');
      await wf.registerNamespace({ namespace, workflowExecutionRetentionPeriod: msToTs(RETENTION_DAYS) });
    }
    const deadline = Date.now() + 90_000;
    for (;;) {
      // A new namespace reaches every service's cache within seconds.
      const present = await op.listSearchAttributes({ namespace }).then(
        (r) => r.customAttributes ?? {},
        () => undefined,
      );
      const missing = present && SEARCH_ATTRIBUTES.filter((k) => !(k.name in present));
      if (missing && missing.length === 0) break;
      if (missing) {
        await op
          .addSearchAttributes({ namespace, searchAttributes: Object.fromEntries(missing.map((k) => [k.name, INDEXED_VALUE_TYPES[k.type]!])) })
          .catch((err: Error) => logger.debug({ err: err.message }, 'adding search attributes'));
      }
      if (Date.now() > deadline)
        throw new Error(`namespace ${namespace}: search attributes ${SEARCH_ATTRIBUTES.map((k) => k.name).join(', ')} could not be registered`);
      await new Promise((r) => setTimeout(r, 1000));
    }
    const query = SEARCH_ATTRIBUTES.map((k) => `${k.name} = 'x'`).join(' AND ');
    for (;;) {
      const ok = await wf.listWorkflowExecutions({ namespace, query, pageSize: 1 }).then(
        () => true,
        () => false,
      );
      if (ok) return;
      if (Date.now() > deadline) throw new Error(`namespace ${namespace} does not answer list queries by our search attributes`);
      await new Promise((r) => setTimeout(r, 1000));
    }
  } finally {
    await connection.close();
  }
}
