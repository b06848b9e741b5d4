/** Versioned schema migrations (node-pg-migrate, plain SQL files in src/db/migrations). */
import path from 'node:path';
import { runner } from 'node-pg-migrate';
import type { Logger } from 'pino';
import { PROJECT_ROOT } from '../config.ts';

export const MIGRATIONS_DIR = path.join(PROJECT_ROOT, 'src', 'db', 'migrations');

/** Applies every pending migration; safe to run concurrently (node-pg-migrate takes an advisory lock). */
export async function migrate(databaseUrl: string, logger?: Logger): Promise<string[]> {
  const applied = await runner({
    databaseUrl,
    dir: MIGRATIONS_DIR,
    direction: 'up',
    migrationsTable: 'pgmigrations',
    log: (msg: string) => logger?.debug(msg),
    logger: logger
      ? { debug: (m: string) => logger.debug(m), info: (m: string) => logger.debug(m), warn: (m: string) => logger.warn(m), error: (m: string) => logger.error(m) }
      : { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} },
  });
  return applied.map((m) => m.name);
}
