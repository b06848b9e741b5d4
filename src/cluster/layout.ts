/**
 * What a cluster is made of, as data: the Temporal server's processes and their ports, the
 * configuration each process reads, the dynamic config, and the Web UI server's configuration.
 * Pure functions: `taskmgr cluster` writes them to files, and a unit test reads them against
 * docker-compose.yml.
 */

/**
 * Temporal's services; history runs as two processes that share the shards. The internal frontend
 * (secured clusters only) is the door the server's own services and the Web UI use, so that the
 * public frontend can demand a token of every caller.
 */
export type ServiceName = 'frontend' | 'internal-frontend' | 'history' | 'matching' | 'worker';

export interface ServerProcess {
  /** Also the config file's name (config/<name>.yaml, read with `--env <name>`). */
  name: string;
  service: ServiceName;
  grpcPort: number;
  membershipPort: number;
  /** frontend only: Temporal's HTTP API. */
  httpPort?: number;
}

export interface ClusterPorts {
  frontend: number;
  frontendHttp: number;
  ui: number;
  /** The internal ports, two per process (gRPC, membership), in start order. */
  internal: {
    history1: [number, number];
    history2: [number, number];
    matching: [number, number];
    worker: [number, number];
    frontendMembership: number;
    internalFrontend: [number, number];
  };
}

/** Temporal's usual ports: frontend 7233 (HTTP 7243), history 7234, matching 7235, worker 7239, membership +300 below. */
export const DEFAULT_PORTS: ClusterPorts = {
  frontend: 7233,
  frontendHttp: 7243,
  ui: 8233,
  internal: {
    history1: [7234, 6934],
    history2: [7236, 6936],
    matching: [7235, 6935],
    worker: [7239, 6939],
    frontendMembership: 6933,
    internalFrontend: [7238, 6938],
  },
};

/**
 * The server processes in the order they start (history first: the others find it through
 * membership); with `internalFrontend`, an internal frontend too (see ServiceName).
 */
export function serverProcesses(ports: ClusterPorts, opts: { internalFrontend?: boolean } = {}): ServerProcess[] {
  const { internal } = ports;
  const internalFrontend: ServerProcess[] = opts.internalFrontend
    ? [{ name: 'internal-frontend', service: 'internal-frontend', grpcPort: internal.internalFrontend[0], membershipPort: internal.internalFrontend[1] }]
    : [];
  return [
    { name: 'history-1', service: 'history', grpcPort: internal.history1[0], membershipPort: internal.history1[1] },
    { name: 'history-2', service: 'history', grpcPort: internal.history2[0], membershipPort: internal.history2[1] },
    { name: 'matching', service: 'matching', grpcPort: internal.matching[0], membershipPort: internal.matching[1] },
    ...internalFrontend,
    { name: 'frontend', service: 'frontend', grpcPort: ports.frontend, membershipPort: internal.frontendMembership, httpPort: ports.frontendHttp },
    { name: 'worker', service: 'worker', grpcPort: internal.worker[0], membershipPort: internal.worker[1] },
  ];
}

/** Where Temporal's databases are; the password is not here: the config reads it from TEMPORAL_DB_PASSWORD. */
export interface SqlStore {
  host: string;
  port: number;
  user: string;
  /** The persistence and the visibility database. */
  databases: { persistence: string; visibility: string };
}

/** The environment variable every server process reads its database password from. */
export const DB_PASSWORD_ENV = 'TEMPORAL_DB_PASSWORD';

/** How the processes reach each other: on this machine (loopback) or in containers (compose). */
export interface ClusterNetwork {
  /** Listen on loopback only, or on every interface of a container. */
  bind: 'loopback' | 'all';
  /** The address other members reach this process at (a template expression in compose). */
  broadcastAddress: string;
  /** The host of the frontend, as the other processes name it. */
  frontendHost: string;
}

export const LOCAL_NETWORK: ClusterNetwork = { bind: 'loopback', broadcastAddress: '127.0.0.1', frontendHost: '127.0.0.1' };

/** The SQL plugin for PostgreSQL 12 and later (advanced visibility needs it). */
export const SQL_PLUGIN = 'postgres12';

/**
 * The cluster's dynamic config: none. Every setting is the server's default, the limits the dev
 * server relaxes included (runs of one id 1 s apart, timers at ~1 s, 2 KB search attribute values,
 * 10 visibility requests per second per frontend). Update-with-start (a deletion's hand-off to its
 * coalescer) and updates are on by default in server 1.29. An operator's overrides go here, each
 * with its reason; the file is re-read every 10 s.
 */
export const DYNAMIC_CONFIG: Record<string, { value: unknown; why: string }> = {};

/** The dynamic config file (YAML; JSON values are YAML). */
export function dynamicConfigYaml(): string {
  const header = "# Temporal dynamic config for registry-taskmgr: every setting at the server's default.\n";
  return (
    header +
    Object.entries(DYNAMIC_CONFIG)
      .map(([key, { value, why }]) => `# ${why}\n${key}:\n  - value: ${JSON.stringify(value)}\n`)
      .join('')
  );
}

const PASSWORD_PLACEHOLDER = '@@password@@';

/** Connections each server process may hold per database: 5 processes x 2 databases x 10 stays within PostgreSQL's default 100. */
export const DEFAULT_CONNECTIONS_PER_STORE = 10;

function datastore(store: SqlStore, databaseName: string, maxConns: number) {
  return {
    sql: {
      pluginName: SQL_PLUGIN,
      databaseName,
      connectAddr: `${store.host}:${store.port}`,
      connectProtocol: 'tcp',
      user: store.user,
      password: PASSWORD_PLACEHOLDER,
      maxConns,
      maxIdleConns: Math.max(1, Math.floor(maxConns / 2)),
      maxConnLifetime: '1h',
    },
  };
}

export interface ServerConfigOptions {
  process: ServerProcess;
  all: ServerProcess[];
  store: SqlStore;
  historyShards: number;
  dynamicConfigFile: string;
  logLevel: string;
  network: ClusterNetwork;
  connectionsPerStore?: number;
  /** TLS and JWT authorization on the public frontend (see auth.ts). */
  security?: FrontendSecurity;
}

export interface FrontendSecurity {
  certFile: string;
  keyFile: string;
  /** Where the frontend reads the keys that sign tokens (the server fetches them by URL). */
  jwksUrl: string;
}

/** TLS on the public frontend (its HTTP API too), and the server's default JWT authorizer and claim mapper. */
function securityConfig(security: FrontendSecurity) {
  return {
    tls: { frontend: { server: { certFile: security.certFile, keyFile: security.keyFile, requireClientAuth: false } } },
    authorization: {
      jwtKeyProvider: { keySourceURIs: [security.jwksUrl], refreshInterval: '1m' },
      permissionsClaimName: 'permissions',
      authorizer: 'default',
      claimMapper: 'default',
    },
  };
}

/** The configuration one server process reads, as an object: every service's ports, its own used. */
export function serverConfig(opts: ServerConfigOptions) {
  const maxConns = opts.connectionsPerStore ?? DEFAULT_CONNECTIONS_PER_STORE;
  const bind = opts.network.bind === 'loopback' ? { bindOnLocalHost: true } : { bindOnIP: '0.0.0.0' };
  const rpc = (p: ServerProcess) => ({
    rpc: { grpcPort: p.grpcPort, membershipPort: p.membershipPort, ...bind, ...(p.httpPort ? { httpPort: p.httpPort } : {}) },
  });
  const first = (service: ServiceName) => opts.all.find((p) => p.service === service)!;
  const present = (['frontend', 'internal-frontend', 'history', 'matching', 'worker'] as const).filter((s) => opts.all.some((p) => p.service === s));
  const services = Object.fromEntries(present.map((s) => [s, rpc(s === opts.process.service ? opts.process : first(s))]));
  const frontend = first('frontend');
  const frontendAt = (port: number | undefined) => `${opts.network.frontendHost}:${port}`;
  return {
    log: { stdout: true, level: opts.logLevel },
    persistence: {
      defaultStore: 'default',
      visibilityStore: 'visibility',
      numHistoryShards: opts.historyShards,
      datastores: {
        default: datastore(opts.store, opts.store.databases.persistence, maxConns),
        visibility: datastore(opts.store, opts.store.databases.visibility, maxConns),
      },
    },
    global: {
      membership: { maxJoinDuration: '30s', broadcastAddress: opts.network.broadcastAddress },
      ...(opts.security ? securityConfig(opts.security) : {}),
    },
    services,
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
          rpcAddress: frontendAt(frontend.grpcPort),
          httpAddress: frontendAt(frontend.httpPort),
        },
      },
    },
    dcRedirectionPolicy: { policy: 'noop' },
    // With an internal frontend the server's services find it through membership (the server refuses a publicClient then).
    ...(present.includes('internal-frontend') ? {} : { publicClient: { hostPort: frontendAt(frontend.grpcPort) } }),
    dynamicConfigClient: { filepath: opts.dynamicConfigFile, pollInterval: '10s' },
  };
}

/**
 * The file one server process reads: a template the server expands at start (`enable-template`),
 * so the database password comes from TEMPORAL_DB_PASSWORD and is never written down. The same
 * template serves `npm run cluster` and docker-compose.yml.
 */
export function serverConfigFile(opts: ServerConfigOptions): string {
  const json = JSON.stringify(serverConfig(opts), null, 2);
  const templated = json.replaceAll(`"${PASSWORD_PLACEHOLDER}"`, `{{ env "${DB_PASSWORD_ENV}" | toJson }}`);
  return `# enable-template (Temporal expands this file at start; JSON is YAML)\n${templated}\n`;
}

/**
 * The Web UI server's configuration: on loopback, write actions as configured. It reaches the
 * cluster through `frontendAddress`: the internal frontend of a secured cluster, since the UI
 * server signs in only with OIDC, which this machine does not have.
 */
export function uiConfig(opts: { frontendAddress: string; uiPort: number; namespace: string; writeActions: boolean }) {
  return {
    temporalGrpcAddress: opts.frontendAddress,
    host: '127.0.0.1',
    port: opts.uiPort,
    enableUi: true,
    defaultNamespace: opts.namespace,
    disableWriteActions: !opts.writeActions,
    cors: { allowOrigins: [`http://127.0.0.1:${opts.uiPort}`, `http://localhost:${opts.uiPort}`], cookieInsecure: true },
    notifyOnNewVersion: false,
    auth: { enabled: false },
  };
}

/**
 * docker-compose.yml's Temporal: the same processes and template, one container each, reaching
 * PostgreSQL at `postgresql` and the frontend at `temporal-frontend`. Each container announces the
 * address `hostname -i` gives it (TEMPORAL_BROADCAST_ADDRESS, set by its command).
 */
export const COMPOSE = {
  network: { bind: 'all', broadcastAddress: '{{ env "TEMPORAL_BROADCAST_ADDRESS" }}', frontendHost: 'temporal-frontend' } as ClusterNetwork,
  store: { host: 'postgresql', port: 5432, user: 'temporal', databases: { persistence: 'temporal', visibility: 'temporal_visibility' } } as SqlStore,
  historyShards: 4,
  /** In the repository, and where the server containers mount it. */
  configDir: 'docker/temporal/config',
  mountedAt: '/etc/temporal/config/registry',
  /** Compose service of each server process. */
  serviceOf: (p: ServerProcess) => `temporal-${p.name}`,
};

/** The files under COMPOSE.configDir: one config per server process and the dynamic config. */
export function composeConfigFiles(): Record<string, string> {
  const all = serverProcesses(DEFAULT_PORTS);
  const files: Record<string, string> = { 'dynamicconfig.yaml': dynamicConfigYaml() };
  for (const p of all) {
    files[`${p.name}.yaml`] = serverConfigFile({
      process: p,
      all,
      store: COMPOSE.store,
      historyShards: COMPOSE.historyShards,
      dynamicConfigFile: `${COMPOSE.mountedAt}/dynamicconfig.yaml`,
      logLevel: 'info',
      network: COMPOSE.network,
    });
  }
  return files;
}
