/** Where the CLI finds the registry's database without starting one. */
import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../config.ts';

/** DATABASE_URL, or the embedded server of a running `npm start`; undefined when neither. */
export function runningDatabaseUrl(config: Config): string | undefined {
  if (config.databaseUrl) return config.databaseUrl;
  const pidFile = path.join(config.dataDir, 'pg', 'postmaster.pid');
  const passwordFile = path.join(config.dataDir, 'pg-password');
  if (!fs.existsSync(pidFile) || !fs.existsSync(passwordFile)) return undefined;
  return `postgres://registry:${encodeURIComponent(fs.readFileSync(passwordFile, 'utf8').trim())}@127.0.0.1:${config.embeddedPgPort}/registry`;
}
