/**
 * The Go programs a real cluster runs beside our code, each built once from its Go module at a
 * pinned version into the cache outside the clone (TEMPORAL_CLI_CACHE), or taken from an
 * environment variable that names a binary:
 * - the Temporal server (`go.temporal.io/server/cmd/server`), one binary for all four services;
 * - temporal-sql-tool (`go.temporal.io/server/cmd/tools/sql`), which creates and migrates the
 *   persistence and visibility schemas (embedded in it) in PostgreSQL;
 * - the Temporal Web UI server (`github.com/temporalio/ui-server/v2/cmd/server`), the UI the CLI's
 *   dev server embeds, as its own process;
 * - promtool (`github.com/prometheus/prometheus/cmd/promtool`), which checks and unit-tests the
 *   alerting rules in observability/prometheus;
 * - an OpenTelemetry Collector (tools/otelcol: the collector's OTLP receiver and OTLP/HTTP
 *   exporter, versions pinned by its go.mod), which the tracing test sends its traces through.
 * Run directly: `tsx src/dev/go-tools.ts` builds what is missing and prints the paths.
 */
import { SetupError } from '../user-error.ts';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { loadConfig, PROJECT_ROOT, type Config } from '../config.ts';
import { goBinary, isExecutable } from './temporal-cli.ts';

/** The server version inside the Temporal CLI v1.5.1 (`temporal version`): the CLI's builds share its modules. */
export const SERVER_VERSION = 'v1.29.1';
/** The UI server version the Temporal CLI v1.5.1 embeds. */
export const UI_SERVER_VERSION = 'v2.42.1';

export interface GoTool {
  label: string;
  /** The package `go install` builds. */
  pkg: string;
  version: string;
  /** The binary's name as `go install` writes it. */
  binary: string;
  /** The environment variable that names a ready binary instead. */
  envVar: keyof Config['temporal']['binaries'];
  /** Its folder in the cache, with the version appended. */
  cacheName: string;
  /** A module of this project to `go build` (its go.mod pins the versions) instead of `go install pkg@version`. */
  sourceDir?: string;
}

export const TEMPORAL_SERVER: GoTool = {
  label: 'the Temporal server',
  pkg: 'go.temporal.io/server/cmd/server',
  version: SERVER_VERSION,
  binary: 'server',
  envVar: 'TEMPORAL_SERVER',
  cacheName: 'temporal-server',
};
export const SQL_TOOL: GoTool = {
  label: 'temporal-sql-tool',
  pkg: 'go.temporal.io/server/cmd/tools/sql',
  version: SERVER_VERSION,
  binary: 'sql',
  envVar: 'TEMPORAL_SQL_TOOL',
  cacheName: 'temporal-sql-tool',
};
export const UI_SERVER: GoTool = {
  label: 'the Temporal Web UI server',
  pkg: 'github.com/temporalio/ui-server/v2/cmd/server',
  version: UI_SERVER_VERSION,
  binary: 'server',
  envVar: 'TEMPORAL_UI_SERVER',
  cacheName: 'ui-server',
};
/** Prometheus v3.x's promtool (its Go module's versions are v0.3xx). */
export const PROMTOOL: GoTool = {
  label: 'promtool',
  pkg: 'github.com/prometheus/prometheus/cmd/promtool',
  version: 'v0.316.0',
  binary: 'promtool',
  envVar: 'PROMTOOL',
  cacheName: 'promtool',
};

/** The OpenTelemetry Collector v0.165.0 built from tools/otelcol. */
export const OTELCOL: GoTool = {
  label: 'the OpenTelemetry Collector',
  pkg: 'go.opentelemetry.io/collector/otelcol',
  version: 'v0.165.0',
  binary: 'otelcol',
  envVar: 'OTELCOL',
  cacheName: 'otelcol',
  sourceDir: path.join(PROJECT_ROOT, 'tools', 'otelcol'),
};

export class GoToolNotFound extends SetupError {
  override name = 'GoToolNotFound';
}

/** The cache folder of one tool, e.g. ~/.cache/registry-taskmgr/temporal-sql-tool-v1.29.1. */
function cacheDir(tool: GoTool, cache: string): string {
  return path.join(cache, `${tool.cacheName}-${tool.version}`);
}

/** Returns the path of `tool`, building it (minutes, once) if it must. */
export function findGoTool(tool: GoTool, opts: { log?: (msg: string) => void; config?: Config } = {}): string {
  const log = opts.log ?? ((m: string) => process.stderr.write(`${m}\n`));
  const config = opts.config ?? loadConfig();
  const fromEnv = config.temporal.binaries[tool.envVar];
  if (fromEnv) {
    if (isExecutable(fromEnv)) return fromEnv;
    throw new GoToolNotFound(`${tool.envVar}=${fromEnv} is not an executable file`);
  }
  const dir = cacheDir(tool, config.temporal.cliCache);
  const target = path.join(dir, tool.binary);
  if (isExecutable(target)) return target;
  const go = goBinary();
  const spec = `${tool.pkg}@${tool.version}`;
  if (!go) throw new GoToolNotFound(`no binary for ${tool.label}: install Go 1.24+ (it builds ${spec}) or set ${tool.envVar}=/path/to/binary`);
  fs.mkdirSync(dir, { recursive: true });
  log(`building ${tool.label} ${tool.version} from its Go module into ${dir} (takes minutes, once)...`);
  const started = Date.now();
  const [args, cwd] = tool.sourceDir ? [['build', '-trimpath', '-o', target, '.'], tool.sourceDir] : [['install', spec], undefined];
  const res = spawnSync(go, args, { cwd, env: { ...process.env, GOBIN: dir }, stdio: ['ignore', 'inherit', 'inherit'] });
  if (res.status !== 0 || !isExecutable(target)) throw new GoToolNotFound(`go ${args.join(' ')} (${tool.sourceDir ?? spec}) failed (exit ${res.status})`);
  log(`built ${tool.label} ${tool.version} in ${Math.round((Date.now() - started) / 1000)} s`);
  return target;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  try {
    for (const tool of [TEMPORAL_SERVER, SQL_TOOL, UI_SERVER, PROMTOOL, OTELCOL]) console.log(`${tool.envVar}=${findGoTool(tool)}`);
  } catch (err) {
    console.error((err as Error).message);
    process.exit(1);
  }
}
