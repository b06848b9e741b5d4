/**
 * Finds the Temporal server itself (`go.temporal.io/server/cmd/server`), the binary a cluster runs,
 * for the test that needs what the CLI's dev server cannot do: serve TLS and demand client
 * certificates. TEMPORAL_SERVER, else a cached build, else a build from its Go module into the
 * cache beside the CLI's (same server version as the CLI's dev server, so the modules the CLI
 * build fetched are reused). Run directly: `tsx src/dev/temporal-server.ts` prints the path.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { loadConfig } from '../config.ts';
import { goBinary, isExecutable } from './temporal-cli.ts';

/** The server version inside the Temporal CLI v1.5.1 (`temporal version`). */
export const SERVER_VERSION = 'v1.29.1';

export class TemporalServerNotFound extends Error {
  override name = 'TemporalServerNotFound';
}

/** Returns the path of the Temporal server binary, building it (minutes, once) if it must. */
export function findTemporalServer(opts: { log?: (msg: string) => void } = {}): string {
  const log = opts.log ?? ((m: string) => process.stderr.write(`${m}\n`));
  const config = loadConfig();
  const fromEnv = config.temporal.serverPath;
  if (fromEnv) {
    if (isExecutable(fromEnv)) return fromEnv;
    throw new TemporalServerNotFound(`TEMPORAL_SERVER=${fromEnv} is not an executable file`);
  }
  const target = path.join(config.temporal.cliCache, `temporal-server-${SERVER_VERSION}`, 'server');
  if (isExecutable(target)) return target;
  const go = goBinary();
  if (!go) throw new TemporalServerNotFound(`no Temporal server binary: install Go 1.24+ (it builds go.temporal.io/server/cmd/server@${SERVER_VERSION}) or set TEMPORAL_SERVER=/path/to/server`);
  fs.mkdirSync(path.dirname(target), { recursive: true });
  log(`building the Temporal server ${SERVER_VERSION} from its Go module into ${path.dirname(target)} (takes minutes, once)...`);
  const started = Date.now();
  const res = spawnSync(go, ['install', `go.temporal.io/server/cmd/server@${SERVER_VERSION}`], { env: { ...process.env, GOBIN: path.dirname(target) }, stdio: ['ignore', 'inherit', 'inherit'] });
  if (res.status !== 0 || !isExecutable(target)) throw new TemporalServerNotFound(`go install go.temporal.io/server/cmd/server@${SERVER_VERSION} failed (exit ${res.status})`);
  log(`built the Temporal server ${SERVER_VERSION} in ${Math.round((Date.now() - started) / 1000)} s`);
  return target;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  try {
    console.log(findTemporalServer());
  } catch (err) {
    console.error((err as Error).message);
    process.exit(1);
  }
}
