/**
 * A Temporal cluster for tests (`npm run test:cluster`): the same processes and configuration as
 * `taskmgr cluster` (src/cluster), on free loopback ports, with fresh persistence and visibility
 * databases of its own in the test PostgreSQL, dropped again at the end. No Web UI.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
// Listen ports below the ephemeral range: membership ports must fit a smallint (see LISTEN_PORTS).
import { freePort } from '../src/dev/temporal-dev-server.ts';
import { findGoTool, SQL_TOOL, TEMPORAL_SERVER } from '../src/dev/go-tools.ts';
import { prepareTemporalDatabases } from '../src/cluster/schema.ts';
import { prepareClusterAuth, serveJwks, TLS_SERVER_NAME, type ClusterAuthFiles } from '../src/cluster/auth.ts';
import { startTemporalCluster, type TemporalCluster } from '../src/cluster/temporal-cluster.ts';
import type { ClusterPorts, SqlStore } from '../src/cluster/layout.ts';
import { createLogger } from '../src/log.ts';

export interface TestCluster extends TemporalCluster {
  dir: string;
  /** A secured cluster's CA, signing key and JWKS (see src/cluster/auth.ts). */
  auth?: ClusterAuthFiles;
}

async function freePorts(): Promise<ClusterPorts> {
  const pair = async (): Promise<[number, number]> => [await freePort(), await freePort()];
  return {
    frontend: await freePort(),
    frontendHttp: await freePort(),
    ui: await freePort(),
    internal: {
      history1: await pair(),
      history2: await pair(),
      matching: await pair(),
      worker: await pair(),
      frontendMembership: await freePort(),
      internalFrontend: await pair(),
    },
  };
}

/**
 * Starts a cluster whose databases live on the server of `adminUrl` (a superuser URL). Four
 * connections per process and database: two test clusters and the tests' own pools share one
 * PostgreSQL of 100 connections.
 */
export async function startTestCluster(adminUrl: string, opts: { historyShards?: number; secured?: boolean } = {}): Promise<TestCluster> {
  const suffix = crypto.randomBytes(4).toString('hex');
  const url = new URL(adminUrl);
  const store: SqlStore = {
    host: url.hostname,
    port: Number(url.port || 5432),
    user: 'temporal_test',
    databases: { persistence: `temporal_test_${suffix}`, visibility: `temporal_test_${suffix}_visibility` },
  };
  const logger = createLogger(process.env.LOG_LEVEL ?? 'warn');
  const password = crypto.randomBytes(12).toString('base64url');
  await prepareTemporalDatabases({ adminUrl, sqlTool: findGoTool(SQL_TOOL), store, password, logger });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'registry-taskmgr-cluster-'));
  const dropDatabases = async () => {
    const admin = new pg.Client({ connectionString: adminUrl });
    await admin.connect();
    for (const name of Object.values(store.databases)) await admin.query(`DROP DATABASE IF EXISTS ${admin.escapeIdentifier(name)} WITH (FORCE)`);
    await admin.end();
  };
  let jwks: Awaited<ReturnType<typeof serveJwks>> | undefined;
  try {
    // Where `taskmgr cluster-token` finds it with DATA_DIR=dir.
    const auth = opts.secured ? await prepareClusterAuth(path.join(dir, 'cluster', 'auth')) : undefined;
    jwks = auth && (await serveJwks(auth));
    const security = auth && jwks && { certFile: auth.certFile, keyFile: auth.keyFile, caFile: auth.caFile, jwksUrl: jwks.url, serverName: TLS_SERVER_NAME };
    const cluster = await startTemporalCluster({
      serverBinary: findGoTool(TEMPORAL_SERVER),
      dir,
      ports: await freePorts(),
      store,
      password,
      historyShards: opts.historyShards ?? 4,
      namespace: 'default',
      uiWriteActions: false,
      logger,
      connectionsPerStore: 4,
      security,
    });
    return {
      ...cluster,
      dir,
      auth,
      async stop() {
        await cluster.stop();
        await jwks?.close();
        await dropDatabases();
        fs.rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await jwks?.close();
    await dropDatabases();
    throw err;
  }
}
