/**
 * Temporal's persistence and visibility databases in PostgreSQL: a role of their own (not the
 * registry's), the two databases it owns, and their schemas created and migrated by
 * temporal-sql-tool from the versioned schema embedded in it. Safe to run at every start: an
 * existing database is only brought up to the tool's latest schema version.
 */
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import type { Logger } from '../log.ts';
import { SQL_PLUGIN, type SqlStore } from './layout.ts';

const exec = promisify(execFile);

export const TEMPORAL_ROLE = 'temporal';

/** The embedded schema names temporal-sql-tool knows for PostgreSQL 12+. */
const SCHEMA_NAMES = { persistence: 'postgresql/v12/temporal', visibility: 'postgresql/v12/visibility' } as const;

/** A password made once and kept beside the data (mode 600). */
export function keptPassword(file: string): string {
  if (fs.existsSync(file)) return fs.readFileSync(file, 'utf8').trim();
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const password = crypto.randomBytes(18).toString('base64url');
  fs.writeFileSync(file, `${password}\n`, { mode: 0o600 });
  return password;
}

/** Creates the role and databases if missing (through an admin URL) and migrates both schemas. */
export async function prepareTemporalDatabases(opts: { adminUrl: string; sqlTool: string; store: SqlStore; password: string; logger: Logger }): Promise<void> {
  const { store } = opts;
  const admin = new pg.Client({ connectionString: opts.adminUrl });
  await admin.connect();
  try {
    const role = admin.escapeIdentifier(store.user);
    const exists = (await admin.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [store.user])).rowCount;
    // DDL takes no parameters: the password goes in as an escaped literal.
    await admin.query(`${exists ? 'ALTER' : 'CREATE'} ROLE ${role} LOGIN PASSWORD ${admin.escapeLiteral(opts.password)}`);
    for (const name of Object.values(store.databases)) {
      if (!(await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount) {
        opts.logger.info({ database: name, owner: store.user }, 'creating a Temporal database');
        await admin.query(`CREATE DATABASE ${admin.escapeIdentifier(name)} OWNER ${role}`);
      }
    }
  } finally {
    await admin.end();
  }
  for (const kind of ['persistence', 'visibility'] as const) await migrateSchema(opts, store.databases[kind], SCHEMA_NAMES[kind]);
}

async function migrateSchema(opts: { sqlTool: string; store: SqlStore; password: string; logger: Logger }, database: string, schemaName: string) {
  const { store } = opts;
  const tool = (...args: string[]) =>
    exec(opts.sqlTool, ['--plugin', SQL_PLUGIN, '--ep', store.host, '--port', String(store.port), '--user', store.user, '--db', database, ...args], {
      // The password by environment, not on a command line other users can read.
      env: { ...process.env, SQL_PASSWORD: opts.password },
      timeout: 120_000,
    });
  const db = new pg.Client({ host: store.host, port: store.port, user: store.user, password: opts.password, database });
  await db.connect();
  const versioned = await db
    .query("SELECT to_regclass('public.schema_version') IS NOT NULL AS present")
    .then((r) => r.rows[0].present as boolean)
    .finally(() => db.end());
  try {
    if (!versioned) await tool('setup-schema', '-v', '0.0');
    await tool('update-schema', '--schema-name', schemaName);
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`temporal-sql-tool could not migrate ${database} (${schemaName}): ${(e.stderr || e.message).trim().split('\n').slice(-3).join(' ')}`);
  }
  opts.logger.info({ database, schema: schemaName }, 'Temporal schema up to date');
}
