/**
 * Temporal's persistence and visibility databases in PostgreSQL: a role of their own (not the
 * registry's), the two databases it owns, and their schemas created and migrated by
 * temporal-sql-tool from the versioned schema embedded in it. Safe to run at every start: an
 * existing database is only brought up to the tool's latest schema version.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import pg from 'pg';
import type { Logger } from '../log.ts';
import { SQL_PLUGIN, type SqlStore } from './layout.ts';

const exec = promisify(execFile);

export const TEMPORAL_ROLE = 'temporal';

/** The embedded schema names temporal-sql-tool knows for PostgreSQL 12+. */
const SCHEMA_NAMES = { persistence: 'postgresql/v12/temporal', visibility: 'postgresql/v12/visibility' } as const;

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
    throw new Error(`temporal-sql-tool could not migrate ${database} (${schemaName}): ${(e.stderr || e.message).trim().split('\n').slice(-3).join(' ')}`, {
      cause: err,
    });
  }
  opts.logger.info({ database, schema: schemaName }, 'Temporal schema up to date');
}

export const REGISTRY_ROLE = 'registry_app';

/**
 * The registry's own role on a PostgreSQL it administers (the embedded one, whose superuser is
 * the one `npm start` uses): LOGIN only, owning the registry database and every object in it, so
 * workers and the page never connect as a superuser. Safe to run at every start.
 */
export async function ensureRegistryRole(adminUrl: string, database: string, password: string): Promise<void> {
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    const role = admin.escapeIdentifier(REGISTRY_ROLE);
    const exists = (await admin.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [REGISTRY_ROLE])).rowCount;
    await admin.query(`${exists ? 'ALTER' : 'CREATE'} ROLE ${role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD ${admin.escapeLiteral(password)}`);
    await admin.query(`ALTER DATABASE ${admin.escapeIdentifier(database)} OWNER TO ${role}`);
  } finally {
    await admin.end();
  }
  // Objects made before (by `npm start`, as the superuser) change hands too.
  const url = new URL(adminUrl);
  url.pathname = `/${database}`;
  const db = new pg.Client({ connectionString: url.toString() });
  await db.connect();
  try {
    await db.query(`DO $$
      DECLARE r record;
      BEGIN
        EXECUTE format('ALTER SCHEMA public OWNER TO %I', '${REGISTRY_ROLE}');
        FOR r IN SELECT c.oid::regclass AS name, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
                    AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype IN ('a', 'i') AND c.relkind = 'S') LOOP
          EXECUTE format('ALTER %s %s OWNER TO %I', CASE r.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END, r.name, '${REGISTRY_ROLE}');
        END LOOP;
        FOR r IN SELECT p.oid::regprocedure AS name, p.prokind FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public' LOOP
          EXECUTE format('ALTER %s %s OWNER TO %I', CASE r.prokind WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END, r.name, '${REGISTRY_ROLE}');
        END LOOP;
        FOR r IN SELECT t.oid::regtype AS name FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
                  WHERE n.nspname = 'public' AND t.typtype IN ('e', 'd', 'c') AND (t.typrelid = 0 OR (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c') LOOP
          EXECUTE format('ALTER TYPE %s OWNER TO %I', r.name, '${REGISTRY_ROLE}');
        END LOOP;
      END $$`);
  } finally {
    await db.end();
  }
}
