/** Versioned schema migrations (node-pg-migrate, plain SQL files in src/db/migrations). */
import path from 'node:path';
import { runner } from 'node-pg-migrate';
import pg from 'pg';
import type { Logger } from 'pino';
import { PROJECT_ROOT } from '../config.ts';

export const MIGRATIONS_DIR = path.join(PROJECT_ROOT, 'src', 'db', 'migrations');

/** Our advisory lock key: migrators wait on it in turn (node-pg-migrate's own lock fails at once when taken). */
const MIGRATORS_LOCK = 0x7265_6769; // "regi"

/**
 * Applies every pending migration. Safe to run concurrently, as N workers starting together on a
 * new database do: each waits for the one before it, which leaves it nothing to do.
 */
export async function migrate(databaseUrl: string, logger?: Logger): Promise<string[]> {
  const lock = new pg.Client({ connectionString: databaseUrl });
  await lock.connect();
  try {
    const { rows } = await lock.query<{ got: boolean }>('SELECT pg_try_advisory_lock($1) AS got', [MIGRATORS_LOCK]);
    if (!rows[0]!.got) {
      // Say why start-up pauses: a long migration elsewhere is not a hang here.
      logger?.info('another process is migrating the database; waiting for it');
      await lock.query('SELECT pg_advisory_lock($1)', [MIGRATORS_LOCK]);
    }
    return await runMigrations(databaseUrl, logger);
  } finally {
    // Ending the session releases the lock too.
    await lock.end();
  }
}

async function runMigrations(databaseUrl: string, logger?: Logger): Promise<string[]> {
  const applied = await runner({
    databaseUrl,
    dir: MIGRATIONS_DIR,
    direction: 'up',
    migrationsTable: 'pgmigrations',
    log: (msg: string) => logger?.debug(msg),
    logger: logger
      ? {
          debug: (m: string) => logger.debug(m),
          info: (m: string) => logger.debug(m),
          warn: (m: string) => logger.warn(m),
          error: (m: string) => logger.error(m),
        }
      : { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} },
  });
  return applied.map((m) => m.name);
}
