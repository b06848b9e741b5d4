/**
 * The generator's bulk load: COPY carries any text and array value intact, the same seed makes
 * the same registry, and a seeded registry is consistent (nothing stale, nothing left invalidated).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { copyRows, type CopyValue } from '../../src/db/copy.ts';
import { withTransaction } from '../../src/db/pool.ts';
import { searchRecords } from '../../src/registry/browse.ts';
import { seedRegistry } from '../../src/registry/seed.ts';
import { UserError } from '../../src/user-error.ts';
import { assertDerivedStateIsCurrent, createTestDatabase, type TestDatabase } from '../helpers.ts';

describe('bulk loading with COPY', () => {
  let db: TestDatabase;
  before(async () => {
    db = await createTestDatabase();
  });
  after(async () => {
    await db?.drop();
  });

  it('carries tabs, line breaks, backslashes, quotes, braces, NULLs and empty arrays intact', async () => {
    const rows: CopyValue[][] = [
      ['tab\there', ['a,b', 'say "hi"', '{braces}', 'back\\slash', 'NULL', ''], true, 1],
      ['line\nbreak\r\nand \\N literally', [], false, -2],
      [null, ['ünïcode ✓', 'tab\tin array'], null, null],
      ['\\', ['\\'], true, 0],
    ];
    const back = await withTransaction(db.pool, async (tx) => {
      await tx.query('CREATE TEMP TABLE copied (n serial, t text, a text[], b boolean, i int) ON COMMIT DROP');
      assert.equal(await copyRows(tx, 'copied (t, a, b, i)', rows), rows.length);
      return (await tx.query<{ t: string | null; a: string[] | null; b: boolean | null; i: number | null }>('SELECT t, a, b, i FROM copied ORDER BY n')).rows;
    });
    assert.deepEqual(
      back.map((r) => [r.t, r.a, r.b, r.i]),
      rows,
    );
  });

  it('the same seed makes the same registry, consistent at once: nothing stale, no invalidation left', { timeout: 120_000 }, async () => {
    const options = { records: 3000, dataSources: 3, hubs: 2, hubSize: 300, seed: 7 };
    const first = await seedRegistry(db.pool, { ...options, prefix: 'a-' });
    const second = await seedRegistry(db.pool, { ...options, prefix: 'b-' });
    assert.equal(first.records, 3000);
    assert.deepEqual(
      second.hubs.map((h) => [h.key.slice(2), h.related]),
      first.hubs.map((h) => [h.key.slice(2), h.related]),
    );
    const shape = async (prefix: string) =>
      (
        await db.pool.query<{ n: number; rels: number; titles: string }>(
          `SELECT count(DISTINCT ro.id)::int AS n, count(r.*)::int AS rels, md5(string_agg(ro.title || r.relation_type, ',' ORDER BY ro.key, r.to_key)) AS titles
             FROM registry_objects ro JOIN data_sources ds ON ds.id = ro.data_source_id LEFT JOIN relations r ON r.from_id = ro.id
            WHERE ds.key LIKE $1`,
          [`${prefix}%`],
        )
      ).rows[0];
    assert.deepEqual(await shape('b-'), await shape('a-'));
    const invalidated = await db.pool.query('SELECT count(*)::int AS n FROM derived_invalidations');
    assert.equal(invalidated.rows[0].n, 0, 'the bulk load leaves no invalidation for maintenance to clear');
    const stale = await db.pool.query(
      `SELECT count(*)::int AS n FROM registry_objects ro LEFT JOIN record_index ri ON ri.record_id = ro.id LEFT JOIN record_cache rc ON rc.record_id = ro.id
        WHERE ro.quality_source_version IS NULL OR ri.source_version IS NULL OR rc.source_version IS NULL`,
    );
    assert.equal(stale.rows[0].n, 0);
    await assertDerivedStateIsCurrent(db.pool);
  });
});

describe('record search over many matches', () => {
  let db: TestDatabase;
  before(async () => {
    db = await createTestDatabase();
    await seedRegistry(db.pool, { records: 1500, dataSources: 2, hubs: 1, hubSize: 50, seed: 9 });
  });
  after(async () => {
    await db?.drop();
  });

  it('counts up to the cap, then says "at least" and pages on in key order; a data source pages in key order', async () => {
    const all = await searchRecords(db.pool, { limit: 1000, offset: 0 });
    assert.equal(all.total, 1500);
    assert.equal(all.totalIsAtLeast, false);
    const capped = await searchRecords(db.pool, { limit: 50, offset: 0 }, 100);
    assert.deepEqual([capped.total, capped.totalIsAtLeast, capped.records.length], [100, true, 50]);
    const keys = all.records.map((r) => r.key);
    const pageTwo = await searchRecords(db.pool, { limit: 50, offset: 50 }, 100);
    assert.deepEqual(
      pageTwo.records.map((r) => r.key),
      keys.slice(50, 100),
    );
    const dataSource = all.records[0]!.dataSourceKey;
    const inOne = await searchRecords(db.pool, { dataSourceKey: dataSource, limit: 20, offset: 0 });
    assert.ok(inOne.records.every((r) => r.dataSourceKey === dataSource));
    assert.deepEqual(
      inOne.records.map((r) => r.key),
      keys.filter((k) => all.records.find((r) => r.key === k)!.dataSourceKey === dataSource).slice(0, 20),
    );
    const word = await searchRecords(db.pool, { q: 'coral', limit: 10, offset: 0 });
    assert.ok(word.total > 0 && !word.totalIsAtLeast, 'few matches: counted and ranked');
    const manyWords = await searchRecords(db.pool, { q: 'coral', limit: 10, offset: 0 }, 5);
    assert.deepEqual([manyWords.total, manyWords.totalIsAtLeast], [5, true]);
    const positions = manyWords.records.map((r) => keys.indexOf(r.key));
    assert.deepEqual(
      positions,
      [...positions].sort((x, y) => x - y),
      'past the cap, key order (as the database sorts keys)',
    );
  });

  it('past the cap, pages of several words walk the key index, and the planner finds what a short walk does not; the same records as the plain query', async () => {
    const { rows } = await db.pool.query<{ key: string }>(
      `SELECT record_key AS key FROM record_index
        WHERE document @@ websearch_to_tsquery('english', 'soil carbon') OR document @@ websearch_to_tsquery('simple', 'soil carbon') ORDER BY record_key`,
    );
    const matches = rows.map((r) => r.key);
    assert.ok(matches.length > 30, `${matches.length} records match`);
    // A walk of 1,000 records fills the first pages; one of 20 records does not (the planner's page then); the last page is never full.
    for (const [limit, offset, walkRows] of [
      [10, 0, 1000],
      [10, 20, 1000],
      [10, 0, 20],
      [50, matches.length - 5, 1000],
    ] as const) {
      const page = await searchRecords(db.pool, { q: 'soil carbon', limit, offset }, 5, walkRows);
      assert.deepEqual(
        page.records.map((r) => r.key),
        matches.slice(offset, offset + limit),
        `limit ${limit}, offset ${offset}, walk of ${walkRows}`,
      );
    }
    // Within one data source, the walk starts at its first record.
    const dataSource = (await db.pool.query<{ key: string }>('SELECT key FROM data_sources ORDER BY key DESC LIMIT 1')).rows[0]!.key;
    const inOne = await searchRecords(db.pool, { q: 'soil carbon', dataSourceKey: dataSource, limit: 5, offset: 0 }, 2, 1000);
    assert.deepEqual(
      inOne.records.map((r) => r.key),
      matches.filter((k) => k.startsWith(`${dataSource}/`)).slice(0, 5),
    );
  });
});

describe('seeding a registry that already holds the data sources', () => {
  let db: TestDatabase;
  before(async () => {
    db = await createTestDatabase();
    await seedRegistry(db.pool, { records: 100, dataSources: 2, hubs: 0, seed: 3 });
  });
  after(async () => {
    await db?.drop();
  });

  it('is refused naming the data sources and --prefix, and writes nothing', async () => {
    const count = async () => (await db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM registry_objects')).rows[0]!.n;
    const before = await count();
    await assert.rejects(seedRegistry(db.pool, { records: 100, dataSources: 3, hubs: 0, seed: 3 }), (err: Error) => {
      assert.ok(err instanceof UserError, String(err));
      assert.match(err.message, /^data source "csiro", "uni-melbourne" already holds records; seed other data sources with --prefix/);
      return true;
    });
    assert.equal(await count(), before);
  });

  it('of two seeds of the same new data sources at once, one writes and the other is refused', async () => {
    const options = { records: 300, dataSources: 1, hubs: 0, seed: 8, prefix: 'twice-' };
    const outcomes = await Promise.allSettled([seedRegistry(db.pool, options), seedRegistry(db.pool, options)]);
    assert.deepEqual(outcomes.map((o) => o.status).sort(), ['fulfilled', 'rejected']);
    const refused = outcomes.find((o) => o.status === 'rejected') as PromiseRejectedResult;
    assert.ok(refused.reason instanceof UserError, String(refused.reason));
    assert.match(refused.reason.message, /^data source "twice-uni-melbourne" already holds records/);
  });
});
