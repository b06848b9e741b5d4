/** Migrations on a new database from several processes at once (N workers starting together): all succeed, each migration runs once. */
import assert from 'node:assert/strict';
import pg from 'pg';
import { describe, it } from 'node:test';
import { migrate } from '../../src/db/migrate.ts';
import { uniqueName } from '../helpers.ts';

describe('migrations', () => {
  it('four migrators at once on an empty database: none fails, the schema is applied once', async () => {
    const adminUrl = process.env.TEST_DATABASE_URL!;
    const name = uniqueName('test_migrate').replace(/-/g, '_');
    const admin = new pg.Client({ connectionString: adminUrl });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${name}`);
    const url = new URL(adminUrl);
    url.pathname = `/${name}`;
    try {
      const runs = await Promise.all(Array.from({ length: 4 }, () => migrate(url.toString())));
      const applied = runs.flat();
      assert.ok(applied.length > 0);
      assert.equal(new Set(applied).size, applied.length, 'each migration ran once');
      assert.equal(runs.filter((r) => r.length > 0).length, 1, 'the first applied them all; the others found nothing to do');
      const check = new pg.Client({ connectionString: url.toString() });
      await check.connect();
      const { rows } = await check.query<{ n: string }>('SELECT count(*) AS n FROM pgmigrations');
      await check.end();
      assert.equal(Number(rows[0]!.n), applied.length);
    } finally {
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.end();
    }
  });
});
