/**
 * Finds the Temporal CLI (dev server, Web UI and `temporal` commands in one binary):
 * TEMPORAL_CLI, else `temporal` on PATH, else a cached build, else a build from its Go module
 * into the cache (outside the clone, so clean clones reuse it), else the TypeScript SDK's download.
 * Run directly: `tsx src/dev/temporal-cli.ts` prints the path, building it when needed.
 */
import { SetupError } from '../user-error.ts';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { loadConfig, type Config } from '../config.ts';

/** Tags that install with `go install` (newer ones carry a local `replace`). First that builds wins. */
export const CLI_VERSIONS = ['v1.5.1', 'v1.5.0', 'v1.4.1'];

export class TemporalCliNotFound extends SetupError {
  override name = 'TemporalCliNotFound';
}

export const isExecutable = (p: string): boolean => {
  try {
    fs.accessSync(p, fs.constants.X_OK);
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
};

export function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir && isExecutable(path.join(dir, name))) return path.join(dir, name);
  }
  return undefined;
}

const cachedBuild = (cacheDir: string, version: string) => path.join(cacheDir, `temporal-cli-${version}`, 'temporal');

/** The Go toolchain, if this machine has one. */
export const goBinary = (): string | undefined => onPath('go') ?? (isExecutable('/usr/local/go/bin/go') ? '/usr/local/go/bin/go' : undefined);

function goBuild(cacheDir: string, log: (msg: string) => void): string | undefined {
  const go = goBinary();
  if (!go) return undefined;
  for (const version of CLI_VERSIONS) {
    const target = cachedBuild(cacheDir, version);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    log(`building the Temporal CLI ${version} from its Go module into ${path.dirname(target)} (takes minutes, once)...`);
    const started = Date.now();
    const res = spawnSync(go, ['install', `github.com/temporalio/cli/cmd/temporal@${version}`], {
      env: { ...process.env, GOBIN: path.dirname(target) },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    if (res.status === 0 && isExecutable(target)) {
      log(`built the Temporal CLI ${version} in ${Math.round((Date.now() - started) / 1000)} s`);
      return target;
    }
    log(`go install of the Temporal CLI ${version} failed (exit ${res.status}); trying the next version`);
  }
  return undefined;
}

/** The SDK's own download (machines with internet and no Go); the file lands in the cache. */
async function sdkDownload(cacheDir: string, log: (msg: string) => void): Promise<string | undefined> {
  const downloadDir = path.join(cacheDir, 'sdk-download');
  fs.mkdirSync(downloadDir, { recursive: true });
  const find = () =>
    fs
      .readdirSync(downloadDir)
      .map((f) => path.join(downloadDir, f))
      .find((f) => isExecutable(f));
  const existing = find();
  if (existing) return existing;
  log('downloading the Temporal CLI through @temporalio/testing...');
  try {
    const { TestWorkflowEnvironment } = await import('@temporalio/testing');
    const env = await TestWorkflowEnvironment.createLocal({ server: { executable: { type: 'cached-download', downloadDir } } });
    await env.teardown();
  } catch (err) {
    log(`the SDK's download failed: ${(err as Error).message}`);
    return undefined;
  }
  return find();
}

/** Returns the path of a working Temporal CLI, building or downloading it if it must. */
export async function findTemporalCli(opts: { log?: (msg: string) => void; config?: Config } = {}): Promise<string> {
  const log = opts.log ?? ((m: string) => process.stderr.write(`${m}\n`));
  // The process's configuration when the caller has it; loaded here for the scripts and benches that only need the CLI.
  const config = opts.config ?? loadConfig();
  if (config.temporal.cliPath) {
    if (isExecutable(config.temporal.cliPath)) return config.temporal.cliPath;
    throw new TemporalCliNotFound(`TEMPORAL_CLI=${config.temporal.cliPath} is not an executable file`);
  }
  const found =
    onPath('temporal') ??
    CLI_VERSIONS.map((v) => cachedBuild(config.temporal.cliCache, v)).find(isExecutable) ??
    goBuild(config.temporal.cliCache, log) ??
    (await sdkDownload(config.temporal.cliCache, log));
  if (found) return found;
  throw new TemporalCliNotFound(
    'no Temporal CLI found. Install one of: (1) Go 1.24+ and rerun (it builds ' +
      `github.com/temporalio/cli/cmd/temporal@${CLI_VERSIONS[0]}), (2) the temporal binary on PATH ` +
      '(https://docs.temporal.io/cli), or set TEMPORAL_CLI=/path/to/temporal.',
  );
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  findTemporalCli()
    .then((p) => console.log(p))
    .catch((err: Error) => {
      console.error(err.message);
      process.exit(1);
    });
}
