/**
 * Migrations on a new database from several processes at once (N workers starting together): all
 * succeed, each migration runs once. A migration that fills a table from an existing registry
 * (0015's stale marks) fills it right on an upgrade.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import pg from 'pg';
import { runner } from 'node-pg-migrate';
import { describe, it } from 'node:test';
import { migrate, MIGRATIONS_DIR } from '../../src/db/migrate.ts';
import { seedRegistry } from '../../src/registry/seed.ts';
import { scanMarkedRecords, STALE_RECORDS_EVERYWHERE } from '../../src/registry/stale-marks.ts';
import { createTestDatabase, uniqueName } from '../helpers.ts';

const quiet = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} };

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

  it('0015 on an existing registry marks every record stale or uncached then, and the marked scan agrees with the full comparison', async () => {
    const db = await createTestDatabase();
    try {
      await seedRegistry(db.pool, { records: 400, dataSources: 2, hubs: 1, hubSize: 40, seed: 53 });
      // Back to just before 0015, whatever came after it since.
      const from0015 = fs
        .readdirSync(MIGRATIONS_DIR)
        .filter((f) => f.endsWith('.sql') && f >= '0015')
        .sort();
      await runner({
        databaseUrl: db.url,
        dir: MIGRATIONS_DIR,
        direction: 'down',
        count: from0015.length,
        migrationsTable: 'pgmigrations',
        log: () => {},
        logger: quiet,
      });
      // Changes made before the upgrade, which no trigger marked: a retitle (stale, and its related
      // records stale), a lost cache entry, a lost index entry, a record with no derived state yet.
      const ids = (await db.pool.query<{ id: string }>("SELECT id FROM registry_objects WHERE key NOT LIKE '%hub%' ORDER BY id LIMIT 4")).rows.map((r) =>
        Number(r.id),
      );
      await db.pool.query("UPDATE registry_objects SET title = title || ' (before the upgrade)' WHERE id = $1", [ids[0]]);
      await db.pool.query('DELETE FROM record_cache WHERE record_id = $1', [ids[1]]);
      await db.pool.query('DELETE FROM record_index WHERE record_id = $1', [ids[2]]);
      await db.pool.query('DELETE FROM record_cache WHERE record_id = $1', [ids[3]]);
      await db.pool.query('DELETE FROM record_index WHERE record_id = $1', [ids[3]]);
      const staleBefore = (await db.pool.query<{ key: string }>(STALE_RECORDS_EVERYWHERE)).rows.map((r) => r.key);
      assert.ok(staleBefore.length >= 3, `${staleBefore.length} stale records`);

      assert.deepEqual(
        await migrate(db.url),
        from0015.map((f) => f.replace(/\.sql$/, '')),
      );
      const marked = new Set(
        (await db.pool.query<{ key: string }>('SELECT ro.key FROM derived_stale_marks m JOIN registry_objects ro ON ro.id = m.record_id')).rows.map(
          (r) => r.key,
        ),
      );
      const invalidated = new Set(
        (await db.pool.query<{ key: string }>('SELECT ro.key FROM derived_invalidations d JOIN registry_objects ro ON ro.id = d.record_id')).rows.map(
          (r) => r.key,
        ),
      );
      assert.deepEqual(
        staleBefore.filter((k) => !marked.has(k) && !invalidated.has(k)),
        [],
        'every stale record is marked or invalidated',
      );
      const scan = await scanMarkedRecords(db.pool);
      assert.deepEqual(scan.stale.map((r) => r.key).sort(), [...staleBefore].sort());
      assert.deepEqual(
        scan.uncachedIds.sort((a, b) => a - b),
        [ids[1], ids[3]],
      );
    } finally {
      await db.drop();
    }
  });
});
