/**
 * Brings up what the worker needs on one machine: PostgreSQL (DATABASE_URL, else embedded) and
 * Temporal (TEMPORAL_ADDRESS, else the CLI dev server with its Web UI), both under DATA_DIR.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Config } from './config.ts';
import { startEmbeddedPostgres } from './dev/embedded-postgres.ts';
import { findTemporalCli } from './dev/temporal-cli.ts';
import { startDevServer } from './dev/temporal-dev-server.ts';
import type { Logger } from './log.ts';

export interface Stack {
  databaseUrl: string;
  /** Address to connect to; undefined means "from the environment" (TEMPORAL_ADDRESS / profile). */
  temporalAddress?: string;
  /** Temporal's HTTP API when this stack runs the server. */
  temporalHttpUrl?: string;
  uiUrl?: string;
  embeddedPostgres: boolean;
  devServer: boolean;
  stop(): Promise<void>;
}

/** A dev server left running by a start that was killed holds the port and the data file: stop it. */
function stopStaleDevServer(pidFile: string, logger: Logger) {
  if (!fs.existsSync(pidFile)) return;
  const pid = Number(fs.readFileSync(pidFile, 'utf8'));
  try {
    const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    if (cmdline.includes('start-dev')) {
      logger.warn({ pid }, 'stopping a Temporal dev server left over from an earlier start');
      process.kill(pid, 'SIGTERM');
    }
  } catch {
    // not running any more
  }
  fs.rmSync(pidFile, { force: true });
}

export async function startStack(config: Config, logger: Logger): Promise<Stack> {
  const stops: (() => Promise<void>)[] = [];
  const stop = async () => {
    for (const s of stops.reverse()) await s().catch((err: Error) => logger.warn({ err: err.message }, 'stop failed'));
  };
  try {
    let databaseUrl = config.databaseUrl;
    if (!databaseUrl) {
      const dir = path.join(config.dataDir, 'pg');
      logger.info({ dir, port: config.embeddedPgPort }, 'starting embedded PostgreSQL');
      const db = await startEmbeddedPostgres({ dir, port: config.embeddedPgPort, logger });
      stops.push(() => db.stop());
      databaseUrl = db.url;
    }

    let temporalAddress: string | undefined;
    let temporalHttpUrl: string | undefined;
    let uiUrl = config.temporal.uiUrl;
    if (!config.temporal.address) {
      const cliPath = await findTemporalCli({ log: (m) => logger.info(m), config });
      const pidFile = path.join(config.dataDir, 'temporal-dev.pid');
      stopStaleDevServer(pidFile, logger);
      logger.info({ port: config.temporal.devPort, ui: config.temporal.uiPort }, 'starting the Temporal dev server');
      const server = await startDevServer({
        cliPath,
        port: config.temporal.devPort,
        uiPort: config.temporal.uiPort,
        httpPort: config.temporal.httpPort,
        dbFile: path.join(config.dataDir, 'temporal.db'),
        namespace: config.temporal.namespace,
      });
      fs.writeFileSync(pidFile, String(server.process.pid));
      stops.push(async () => {
        await server.stop();
        fs.rmSync(pidFile, { force: true });
      });
      temporalAddress = server.address;
      temporalHttpUrl = server.httpUrl;
      uiUrl ??= server.uiUrl;
    }
    return { databaseUrl, temporalAddress, temporalHttpUrl, uiUrl, embeddedPostgres: !config.databaseUrl, devServer: !config.temporal.address, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
