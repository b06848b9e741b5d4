/**
 * A Temporal server (the binary a cluster runs, not the CLI's dev server) that serves its frontend
 * over TLS and demands client certificates: SQLite in memory, one history shard, every port on
 * loopback. The namespace and the project's search attributes are created over mTLS with the
 * temporal CLI, as an operator of a TLS cluster would.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort, TYPE_NAMES } from '../src/dev/temporal-dev-server.ts';
import { SEARCH_ATTRIBUTES } from '../src/shared.ts';
import type { TestCertificates } from './certs.ts';

const exec = promisify(execFile);

export interface TlsTemporalServer {
  address: string;
  /** `temporal` CLI flags that connect with the CA and the client certificate. */
  cliTlsArgs: string[];
  process: ChildProcess;
  stop(): Promise<void>;
}

const sqlite = (databaseName: string) => ({
  sql: {
    pluginName: 'sqlite',
    databaseName,
    connectAddr: 'localhost',
    connectProtocol: 'tcp',
    connectAttributes: { mode: 'memory', cache: 'private' },
    maxConns: 1,
    maxIdleConns: 1,
  },
});

export async function startTlsTemporalServer(opts: { serverPath: string; cliPath: string; certs: TestCertificates; dir: string }): Promise<TlsTemporalServer> {
  const { certs } = opts;
  const ports: Record<string, number> = {};
  for (const name of [
    'frontend',
    'frontendHttp',
    'history',
    'matching',
    'worker',
    'frontendMembership',
    'historyMembership',
    'matchingMembership',
    'workerMembership',
  ])
    ports[name] = await freePort();
  const address = `127.0.0.1:${ports.frontend}`;
  const service = (name: string) => ({ rpc: { grpcPort: ports[name], membershipPort: ports[`${name}Membership`], bindOnLocalHost: true } });
  // JSON is YAML: the server reads config/<env>.yaml under --root.
  const config = {
    log: { stdout: true, level: 'warn' },
    persistence: {
      defaultStore: 'db',
      visibilityStore: 'visibility',
      numHistoryShards: 1,
      datastores: { db: sqlite('temporal'), visibility: sqlite('temporal_visibility') },
    },
    global: {
      membership: { maxJoinDuration: '30s', broadcastAddress: '127.0.0.1' },
      tls: {
        frontend: {
          server: { certFile: certs.serverCert, keyFile: certs.serverKey, requireClientAuth: true, clientCaFiles: [certs.ca] },
          client: { serverName: 'localhost', rootCaFiles: [certs.ca] },
        },
        // The server's own system workflows reach the frontend as a client too.
        systemWorker: { certFile: certs.clientCert, keyFile: certs.clientKey, client: { serverName: 'localhost', rootCaFiles: [certs.ca] } },
      },
    },
    services: {
      frontend: { rpc: { ...service('frontend').rpc, httpPort: ports.frontendHttp } },
      history: service('history'),
      matching: service('matching'),
      worker: service('worker'),
    },
    clusterMetadata: {
      enableGlobalNamespace: false,
      failoverVersionIncrement: 10,
      masterClusterName: 'active',
      currentClusterName: 'active',
      clusterInformation: {
        active: {
          enabled: true,
          initialFailoverVersion: 1,
          rpcName: 'frontend',
          rpcAddress: `localhost:${ports.frontend}`,
          httpAddress: `localhost:${ports.frontendHttp}`,
        },
      },
    },
    dcRedirectionPolicy: { policy: 'noop' },
    publicClient: { hostPort: `localhost:${ports.frontend}` },
    dynamicConfigClient: { filepath: path.join(opts.dir, 'dynamicconfig.yaml'), pollInterval: '10s' },
  };
  fs.mkdirSync(path.join(opts.dir, 'config'), { recursive: true });
  fs.writeFileSync(path.join(opts.dir, 'config', 'development.yaml'), JSON.stringify(config, null, 2));
  // Search attributes usable as soon as they are created, as on the dev server.
  fs.writeFileSync(path.join(opts.dir, 'dynamicconfig.yaml'), 'system.forceSearchAttributesCacheRefreshOnRead:\n  - value: true\n');

  const child = spawn(opts.serverPath, ['--root', opts.dir, '--config', 'config', '--env', 'development', '--allow-no-auth', 'start'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (c: Buffer) => (output = (output + c.toString()).slice(-20_000)));
  child.stderr!.on('data', (c: Buffer) => (output = (output + c.toString()).slice(-20_000)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
  };

  const cliTlsArgs = [
    '--address',
    address,
    '--tls-ca-path',
    certs.ca,
    '--tls-cert-path',
    certs.clientCert,
    '--tls-key-path',
    certs.clientKey,
    '--tls-server-name',
    'localhost',
  ];
  const cli = (...args: string[]) => exec(opts.cliPath, [...args, ...cliTlsArgs], { timeout: 30_000 });
  try {
    // The frontend answers once the system namespace is up; then register ours.
    const deadline = Date.now() + 90_000;
    for (;;) {
      try {
        await cli('operator', 'namespace', 'create', '--namespace', 'default');
        break;
      } catch (err) {
        if (child.exitCode !== null) throw new Error(`the Temporal server exited:\n${output}`, { cause: err });
        if (Date.now() > deadline) throw new Error(`the Temporal server did not answer over mTLS: ${(err as Error).message}\n${output}`, { cause: err });
        await new Promise((r) => setTimeout(r, 500));
      }
    }
    for (const sa of SEARCH_ATTRIBUTES)
      await cli('operator', 'search-attribute', 'create', '--namespace', 'default', '--name', sa.name, '--type', TYPE_NAMES[sa.type] ?? sa.type);
    // A new namespace reaches every service's cache within seconds: wait until a workflow can be listed in it.
    for (;;) {
      try {
        await cli('workflow', 'list', '--namespace', 'default', '--limit', '1');
        break;
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`namespace default is not usable: ${(err as Error).message}`, { cause: err });
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { address, cliTlsArgs, process: child, stop };
}
