/**
 * The one place that turns the environment into a typed configuration. Bad values fail fast
 * with a message that names the variable, the value and what is allowed.
 */
import { SetupError } from './user-error.ts';
import path from 'node:path';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { DURATION_FORMS, parseDuration } from './taskmgr/duration.ts';
import { DEFAULT_TASK_QUEUE } from './shared.ts';
import { DEFAULT_WORKER_WAIT_MS } from './client/worker-wait.ts';

const isDuration = (v: string) => {
  try {
    parseDuration(v);
    return true;
  } catch {
    return false;
  }
};

export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const port = z.coerce.number().int().min(1).max(65535);
const positiveInt = z.coerce.number().int().min(1);

const schema = z.object({
  DATABASE_URL: z
    .string()
    .url()
    .refine((u) => /^postgres(ql)?:\/\//.test(u), { message: 'expected a postgres:// or postgresql:// URL' })
    .optional(),
  DATA_DIR: z.string().default(path.join(PROJECT_ROOT, '.data')),
  EMBEDDED_PG_PORT: port.default(5433),
  TEMPORAL_ADDRESS: z.string().optional(),
  TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  TEMPORAL_TASK_QUEUE: z.string().min(1).default(DEFAULT_TASK_QUEUE),
  TEMPORAL_DEV_PORT: port.default(7233),
  TEMPORAL_UI_PORT: port.default(8233),
  TEMPORAL_UI_URL: z.string().url().optional(),
  TEMPORAL_CLI: z.string().optional(),
  TEMPORAL_SERVER: z.string().optional(),
  TEMPORAL_SQL_TOOL: z.string().optional(),
  TEMPORAL_UI_SERVER: z.string().optional(),
  PROMTOOL: z.string().optional(),
  OTELCOL: z.string().optional(),
  // Temporal's HTTP API (plain JSON, for registry code in any language), on the dev server and the cluster.
  TEMPORAL_HTTP_PORT: port.default(7243),
  TEMPORAL_HISTORY_SHARDS: z.coerce.number().int().min(1).max(16384).default(4),
  TEMPORAL_UI_WRITE_ACTIONS: z.enum(['true', 'false']).default('true'),
  TEMPORAL_CLI_CACHE: z.string().default(path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'registry-taskmgr')),
  FOLLOWUP_BATCH_SIZE: positiveInt.max(20000).default(500),
  FOLLOWUP_CONCURRENCY: positiveInt.max(32).default(2),
  FOLLOWUP_QUIET: z
    .string()
    .default('300 milliseconds')
    .refine(isDuration, { message: `expected ${DURATION_FORMS}` }),
  FOLLOWUP_MAX_WAIT: z
    .string()
    .default('3 seconds')
    .refine(isDuration, { message: `expected ${DURATION_FORMS}` }),
  // Follow-ups queued this long and not finished wake their coalescer again (one terminated mid-round strands them).
  FOLLOWUP_STRANDED_AFTER: z
    .string()
    .default('2 minutes')
    .refine(isDuration, { message: `expected ${DURATION_FORMS}` })
    .refine((v) => !isDuration(v) || (parseDuration(v) >= 1000 && parseDuration(v) <= 86_400_000), { message: 'expected between 1 second and 1 day' }),
  SEED_RECORDS: positiveInt.default(2000),
  SEED_DATA_SOURCES: positiveInt.max(100).default(3),
  TASK_PREREQUISITE_RECHECK: z
    .string()
    .default('1 hour')
    .refine(isDuration, { message: `expected ${DURATION_FORMS}` }),
  TASK_RUN_SLOTS: positiveInt.max(200).default(4),
  WORKER_CACHED_WORKFLOWS: positiveInt.min(2).max(100_000).optional(),
  TASK_WAIT_HISTORY_LIMIT: positiveInt.min(50).max(10_000).default(1000),
  WORKER_WAIT: z
    .string()
    .default(`${DEFAULT_WORKER_WAIT_MS / 1000} seconds`)
    .refine(isDuration, { message: `expected ${DURATION_FORMS}` }),
  TASK_RETENTION: z
    .string()
    .default('1 day')
    .refine(isDuration, { message: `expected ${DURATION_FORMS}` }),
  MAINTENANCE_EVERY: z
    .string()
    .default('1 hour')
    .refine(isDuration, { message: `expected ${DURATION_FORMS}` }),
  HTTP_HOST: z.string().min(1).default('127.0.0.1'),
  // 0 picks a free port (tests).
  HTTP_PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  ADMIN_USER: z.string().min(1).max(100).default('admin'),
  ADMIN_PASSWORD: z.string().min(12, 'must be at least 12 characters').optional(),
  VIEWER_USER: z.string().min(1).max(100).default('viewer'),
  VIEWER_PASSWORD: z.string().min(12, 'must be at least 12 characters').optional(),
  // Set when the page is served over HTTPS (by a proxy in front): session cookies get the Secure flag.
  HTTP_SECURE_COOKIES: z.enum(['true', 'false']).default('false'),
  // The proxies whose X-Forwarded-For names the client (addresses or CIDRs, comma-separated), so
  // failed sign-ins are counted per real client; unset: the connecting address is the client.
  HTTP_TRUST_PROXY: z
    .string()
    .regex(/^[0-9a-fA-F.:/, ]+$/, 'expected addresses or CIDRs, comma-separated (e.g. 127.0.0.1,10.0.0.0/8)')
    .optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  // The worker's Prometheus endpoint (GET /metrics): the SDK's metrics and the registry's; "off" for none.
  METRICS_SAMPLE_EVERY: z
    .string()
    .default('15 seconds')
    .refine(isDuration, { message: `expected ${DURATION_FORMS}` }),
  METRICS_ADDRESS: z
    .string()
    .regex(/^(off|[0-9A-Za-z.-]+:\d{1,5}|\[[0-9a-fA-F:]+\]:\d{1,5})$/, 'expected host:port (e.g. 127.0.0.1:9464) or off')
    .default('127.0.0.1:9464'),
  // OpenTelemetry's own variables: traces go over OTLP/HTTP to this collector; unset, no tracing.
  OTEL_EXPORTER_OTLP_ENDPOINT: z
    .string()
    .url()
    .refine((u) => /^https?:\/\//.test(u), { message: 'expected an http:// or https:// URL (OTLP/HTTP, e.g. http://127.0.0.1:4318)' })
    .optional(),
  OTEL_SERVICE_NAME: z.string().min(1).max(100).optional(),
  // Where the page's Health view reads the alerts' state (Prometheus' HTTP API); unset: not shown.
  PROMETHEUS_URL: z
    .string()
    .url()
    .refine((u) => /^https?:\/\//.test(u), { message: 'expected an http:// or https:// URL (e.g. http://127.0.0.1:9090)' })
    .optional(),
});

export type Config = {
  databaseUrl?: string;
  dataDir: string;
  embeddedPgPort: number;
  temporal: {
    /** Set when an external server is to be used; unset means "start the dev server". */
    address?: string;
    namespace: string;
    taskQueue: string;
    devPort: number;
    uiPort: number;
    uiUrl?: string;
    cliPath?: string;
    /** Go binaries named by environment (TEMPORAL_SERVER, TEMPORAL_SQL_TOOL, TEMPORAL_UI_SERVER, PROMTOOL, OTELCOL); else built into cliCache. */
    binaries: Record<'TEMPORAL_SERVER' | 'TEMPORAL_SQL_TOOL' | 'TEMPORAL_UI_SERVER' | 'PROMTOOL' | 'OTELCOL', string | undefined>;
    cliCache: string;
    httpPort: number;
    /** `taskmgr cluster`: history shards (fixed when the cluster is first created) and the Web UI's write actions. */
    historyShards: number;
    uiWriteActions: boolean;
  };
  followUp: {
    batchSize: number;
    concurrency: number;
    coalesce: { quietMs: number; maxWaitMs: number };
    /** Each worker wakes the coalescer of a data source whose follow-ups have waited this long (a sweep every quarter of it, at most 30 s). */
    strandedAfterMs: number;
  };
  seed: { records: number; dataSources: number };
  /** Task modules a worker runs at once (on its own task queue, apart from follow-ups). */
  taskRunSlots: number;
  /** Workflows a worker keeps in its cache; undefined leaves the SDK's default (from the heap limit). */
  cachedWorkflows?: number;
  /** How WAITING tasks wait: the prerequisite recheck, and the history size at which a wait continues as new. */
  taskWaits: { prerequisiteRecheckMs: number; historyLimit: number };
  /** Closed tasks older than this are removed by HOURLY_REGISTRY_MAINTENANCE. */
  taskRetentionMs: number;
  /** How long a call a worker must answer (adding a task, a record's deletion or operation) waits for one before answering that none has. */
  workerWaitMs: number;
  maintenanceEvery: string;
  http: {
    host: string;
    port: number;
    /** Unset: on a loopback address a random one is made and kept in DATA_DIR/admin-password. */
    adminUser: string;
    adminPassword?: string;
    viewerUser: string;
    viewerPassword?: string;
    /** Served over TLS (directly or by a proxy): Secure __Host- cookies and HSTS. */
    secureCookies: boolean;
    trustProxy?: string[];
  };
  logLevel: z.infer<typeof schema>['LOG_LEVEL'];
  /** host:port of the worker's Prometheus endpoint; undefined: none. */
  metricsAddress?: string;
  /** How often a worker samples the registry's gauges (follow-up lag, quarantine, waiting tasks) from PostgreSQL. */
  metricsSampleMs: number;
  /** OpenTelemetry traces; started by bin/taskmgr.js before any instrumented module loads (see tracingSettings). */
  tracing: TracingSettings;
  /** Prometheus' base URL, for the alerts' state on the Health view. */
  prometheusUrl?: string;
};

export interface TracingSettings {
  /** OTLP/HTTP collector base URL; undefined: tracing is off. */
  otlpEndpoint?: string;
  serviceName?: string;
}

/** A value safe to print: the password of any URL in it (user:password@) replaced by ***. */
export function redactSecrets(value: string): string {
  return value.replace(/(\/\/[^:/@\s]*:)[^@\s]*@/g, '$1***@');
}

export class ConfigError extends SetupError {
  override name = 'ConfigError';
}

/** Reads the configuration from `env` (default: process.env). Throws ConfigError on a bad value. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  // Empty strings count as unset: `FOO= npm start` should mean the default.
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = schema.safeParse(cleaned);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => {
      const name = String(issue.path[0]);
      // Secrets are never echoed, not even in an error.
      const shown = /PASSWORD|SECRET|API_KEY/.test(name) ? '(hidden)' : JSON.stringify(redactSecrets(String(env[name])));
      return `${name}=${shown}: ${describeIssue(issue)}`;
    });
    throw new ConfigError(`invalid configuration:\n  ${lines.join('\n  ')}`);
  }
  const c = parsed.data;
  return {
    databaseUrl: c.DATABASE_URL,
    dataDir: path.resolve(c.DATA_DIR),
    embeddedPgPort: c.EMBEDDED_PG_PORT,
    temporal: {
      address: c.TEMPORAL_ADDRESS,
      namespace: c.TEMPORAL_NAMESPACE,
      taskQueue: c.TEMPORAL_TASK_QUEUE,
      devPort: c.TEMPORAL_DEV_PORT,
      uiPort: c.TEMPORAL_UI_PORT,
      uiUrl: c.TEMPORAL_UI_URL,
      cliPath: c.TEMPORAL_CLI,
      binaries: {
        TEMPORAL_SERVER: c.TEMPORAL_SERVER,
        TEMPORAL_SQL_TOOL: c.TEMPORAL_SQL_TOOL,
        TEMPORAL_UI_SERVER: c.TEMPORAL_UI_SERVER,
        PROMTOOL: c.PROMTOOL,
        OTELCOL: c.OTELCOL,
      },
      cliCache: c.TEMPORAL_CLI_CACHE,
      httpPort: c.TEMPORAL_HTTP_PORT,
      historyShards: c.TEMPORAL_HISTORY_SHARDS,
      uiWriteActions: c.TEMPORAL_UI_WRITE_ACTIONS === 'true',
    },
    followUp: {
      batchSize: c.FOLLOWUP_BATCH_SIZE,
      concurrency: c.FOLLOWUP_CONCURRENCY,
      coalesce: { quietMs: parseDuration(c.FOLLOWUP_QUIET), maxWaitMs: parseDuration(c.FOLLOWUP_MAX_WAIT) },
      strandedAfterMs: parseDuration(c.FOLLOWUP_STRANDED_AFTER),
    },
    seed: { records: c.SEED_RECORDS, dataSources: c.SEED_DATA_SOURCES },
    taskRunSlots: c.TASK_RUN_SLOTS,
    cachedWorkflows: c.WORKER_CACHED_WORKFLOWS,
    taskWaits: { prerequisiteRecheckMs: parseDuration(c.TASK_PREREQUISITE_RECHECK), historyLimit: c.TASK_WAIT_HISTORY_LIMIT },
    taskRetentionMs: parseDuration(c.TASK_RETENTION),
    workerWaitMs: parseDuration(c.WORKER_WAIT),
    maintenanceEvery: c.MAINTENANCE_EVERY,
    http: {
      host: c.HTTP_HOST,
      port: c.HTTP_PORT,
      adminUser: c.ADMIN_USER,
      adminPassword: c.ADMIN_PASSWORD,
      viewerUser: c.VIEWER_USER,
      viewerPassword: c.VIEWER_PASSWORD,
      secureCookies: c.HTTP_SECURE_COOKIES === 'true',
      trustProxy: c.HTTP_TRUST_PROXY?.split(',')
        .map((a) => a.trim())
        .filter(Boolean),
    },
    logLevel: c.LOG_LEVEL,
    metricsAddress: c.METRICS_ADDRESS === 'off' ? undefined : c.METRICS_ADDRESS,
    metricsSampleMs: parseDuration(c.METRICS_SAMPLE_EVERY),
    tracing: { otlpEndpoint: c.OTEL_EXPORTER_OTLP_ENDPOINT, serviceName: c.OTEL_SERVICE_NAME },
    prometheusUrl: c.PROMETHEUS_URL,
  };
}

/**
 * The tracing part alone, read when the process starts: instrumentation must be in place before
 * pg and fastify load, which is before a command loads its configuration. A bad value here
 * turns tracing off; loadConfig then reports it.
 */
export function tracingSettings(env: NodeJS.ProcessEnv = process.env): TracingSettings {
  const parsed = schema.pick({ OTEL_EXPORTER_OTLP_ENDPOINT: true, OTEL_SERVICE_NAME: true }).safeParse({
    OTEL_EXPORTER_OTLP_ENDPOINT: env.OTEL_EXPORTER_OTLP_ENDPOINT || undefined,
    OTEL_SERVICE_NAME: env.OTEL_SERVICE_NAME || undefined,
  });
  return parsed.success ? { otlpEndpoint: parsed.data.OTEL_EXPORTER_OTLP_ENDPOINT, serviceName: parsed.data.OTEL_SERVICE_NAME } : {};
}

function describeIssue(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'invalid_value':
      return `allowed: ${issue.values.map(String).join(', ')}`;
    case 'too_small':
      return `must be at least ${String(issue.minimum)}`;
    case 'too_big':
      return `must be at most ${String(issue.maximum)}`;
    case 'invalid_type':
      return `expected ${issue.expected}`;
    case 'invalid_format':
      // A pattern's own message says what it expects ("expected host:port ..."); "a regex" would not.
      return issue.format === 'regex' ? issue.message : `expected a ${issue.format}`;
    case 'custom':
      return issue.message;
    default:
      return issue.message;
  }
}
