/**
 * Demo-registry generator: realistic records of the four classes over several data sources,
 * relations within and across data sources, and hub records with many related records.
 * Deterministic for a given seed, so tests and benchmarks can rebuild the same registry.
 */
import type { Logger } from 'pino';
import { copyRows, type CopyValue } from '../db/copy.ts';
import { UserError } from '../user-error.ts';
import { withTransaction, type Pool, type PoolClient, type Queryable } from '../db/pool.ts';
import type { RecordClass } from '../shared.ts';
import { recheckQuality, regenerateCache, reindexRecords } from './derived.ts';
import { scanMarkedRecords } from './stale-marks.ts';

export interface SeedOptions {
  records: number;
  dataSources: number;
  /** Hub records (alternately activities and parties) with `hubSize` related collections each. */
  hubs?: number;
  hubSize?: number;
  seed?: number;
  /** Prefix of data-source keys, so several generated registries can share a database. */
  prefix?: string;
}

export interface SeedSummary {
  dataSources: string[];
  records: number;
  relations: number;
  hubs: { key: string; class: RecordClass; related: number }[];
}

/** Small, fast, seedable PRNG (mulberry32): the same seed gives the same registry (and a test the same mix). */
export function rng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    chance: (p: number) => next() < p,
    int: (n: number) => Math.floor(next() * n),
    pick: <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]!,
  };
}

const INSTITUTIONS = [
  ['uni-melbourne', 'The University of Melbourne'],
  ['csiro', 'CSIRO Data Access Portal'],
  ['aims', 'Australian Institute of Marine Science'],
  ['tern', 'Terrestrial Ecosystem Research Network'],
  ['ga', 'Geoscience Australia'],
  ['anu', 'Australian National University'],
  ['imos', 'Integrated Marine Observing System'],
  ['uq', 'The University of Queensland'],
] as const;
const TOPICS = [
  'coral reef',
  'soil carbon',
  'rainfall',
  'bushfire',
  'groundwater',
  'seagrass',
  'eucalypt',
  'koala habitat',
  'ocean temperature',
  'wetland',
  'drought',
  'sediment',
  'bird migration',
  'genomics',
  'air quality',
  'permafrost',
  'mangrove',
  'salinity',
];
const KINDS = ['survey', 'observations', 'time series', 'samples', 'model outputs', 'measurements', 'images', 'transects'];
const PLACES = [
  'Great Barrier Reef',
  'Murray-Darling Basin',
  'Tasmania',
  'Kimberley',
  'Pilbara',
  'Gippsland',
  'Kakadu',
  'Southern Ocean',
  'Cape York',
  'Blue Mountains',
];
const GIVEN = ['Alice', 'Bao', 'Chloe', 'Dev', 'Emma', 'Farid', 'Grace', 'Hiro', 'Isla', 'Jack', 'Kiri', 'Liam', 'Maya', 'Noah', 'Olivia', 'Priya'];
const FAMILY = ['Nguyen', 'Smith', 'Chen', 'Williams', 'Patel', 'Brown', 'Kelly', 'Singh', 'Taylor', 'Wilson', 'Martin', 'Lee'];
const SUBJECTS = ['0401', '0502', '0602', '0607', '0406', '0403', '0704', '0501', '0603', '1117'];
const COLLECTION_TYPES = ['dataset', 'collection', 'catalogueOrIndex', 'registry', 'repository'];

interface GenRecord {
  key: string;
  class: RecordClass;
  type: string | null;
  group: string | null;
  ds: number;
  status: string;
  title: string | null;
  description: string | null;
  rights: string | null;
  accessPolicy: string | null;
  location: string | null;
  electronic: string | null;
  identifiers: string[];
  subjects: string[];
  dates: string[];
  spatial: string | null;
  temporal: string | null;
  citation: string | null;
  gold: boolean;
}

type Rng = ReturnType<typeof rng>;
type DataSourceSeed = { key: string; title: string };
/** What relations and the summary need of a record; its fields go to the database as it is made. */
interface SeedRecord {
  key: string;
  class: RecordClass;
  ds: number;
}
/** [from, toKey, type]: a relation to a key, which may not be in the registry. */
type GenRelation = [SeedRecord, string, string];
/** The registry being generated: the records made so far, by class, and the hubs. */
interface RegistryPlan {
  r: Rng;
  opts: SeedOptions;
  dataSources: DataSourceSeed[];
  records: SeedRecord[];
  byClass: Record<RecordClass, SeedRecord[]>;
  hubs: SeedRecord[];
  hubSize: number;
}

/**
 * Creates data sources, records and relations (streamed with COPY as they are generated), then
 * computes every record's derived state.
 */
export async function seedRegistry(pool: Pool, opts: SeedOptions, logger?: Logger): Promise<SeedSummary> {
  const plan = planRegistry(opts);
  const written = await writeRegistry(pool, plan);
  logger?.info({ records: written.ids.length, relations: written.relations }, 'records written; computing quality, index and cache');
  // A fresh bulk load: the planner needs the tables' new sizes for the derived-state statements.
  await pool.query('ANALYZE registry_objects, relations');
  await rebuildDerived(pool, written.ids);
  // Every record written was marked for the maintenance; the ones now fresh lose their marks, as the
  // maintenance would remove them (a seed that dies before this leaves them for it).
  await scanMarkedRecords(pool);
  return summarise(pool, plan, written.relations);
}

/** The registry the seed makes, before any record: the same seed always makes the same registry. */
function planRegistry(opts: SeedOptions): RegistryPlan {
  const prefix = opts.prefix ?? '';
  const dataSources = Array.from({ length: opts.dataSources }, (_, i) => {
    const [key, title] = INSTITUTIONS[i % INSTITUTIONS.length]!;
    const round = Math.floor(i / INSTITUTIONS.length);
    return { key: `${prefix}${key}${round ? `-${round + 1}` : ''}`, title: round ? `${title} (${round + 1})` : title };
  });
  return {
    r: rng(opts.seed ?? 42),
    opts,
    dataSources,
    records: [],
    byClass: { collection: [], party: [], activity: [], service: [] },
    hubs: [],
    hubSize: opts.hubSize ?? Math.max(10, Math.min(5000, Math.round(opts.records * 0.1))),
  };
}

/** The records, hubs first: each full record is yielded once, and only its key, class and data source are kept. */
function* generateRecords(plan: RegistryPlan): Generator<GenRecord> {
  const { r, opts } = plan;
  const make = recordMaker(r, plan);
  const hubCount = opts.hubs ?? Math.max(1, Math.min(5, Math.round(opts.records / 5000)));
  for (let h = 0; h < hubCount; h++) {
    const hub = make(h % 2 === 0 ? 'activity' : 'party', h % opts.dataSources, true);
    plan.hubs.push(plan.records.at(-1)!);
    yield hub;
  }
  const classes: [RecordClass, number][] = [
    ['collection', 0.6],
    ['party', 0.2],
    ['activity', 0.12],
    ['service', 0.08],
  ];
  while (plan.records.length < opts.records) {
    const ds = r.int(opts.dataSources);
    let x = r.next();
    const cls = classes.find(([, p]) => (x -= p) < 0)?.[0] ?? 'collection';
    yield make(cls, ds);
  }
}

/** Makes records of a class in a data source, with the fields a harvest would bring (some missing). */
function recordMaker(r: Rng, plan: RegistryPlan) {
  const { dataSources, records, byClass } = plan;
  const counters = new Map<string, number>();
  const make = (cls: RecordClass, ds: number, hub = false): GenRecord => {
    const dsKey = dataSources[ds]!.key;
    const n = (counters.get(`${ds}/${cls}`) ?? 0) + 1;
    counters.set(`${ds}/${cls}`, n);
    const topic = r.pick(TOPICS);
    const place = r.pick(PLACES);
    const title =
      cls === 'collection'
        ? `${topic[0]!.toUpperCase()}${topic.slice(1)} ${r.pick(KINDS)}, ${place}`
        : cls === 'party'
          ? hub
            ? `${dataSources[ds]!.title} Research Office`
            : `${r.pick(GIVEN)} ${r.pick(FAMILY)}`
          : cls === 'activity'
            ? `${hub ? 'National programme' : 'Project'}: ${topic} in the ${place}`
            : `${topic} data service`;
    const rec: GenRecord = {
      key: `${dsKey}/${cls}/${hub ? 'hub-' : ''}${String(n).padStart(6, '0')}`,
      class: cls,
      type:
        cls === 'collection'
          ? r.chance(0.97)
            ? r.pick(COLLECTION_TYPES)
            : null
          : cls === 'party'
            ? r.pick(['person', 'group'])
            : cls === 'activity'
              ? r.pick(['project', 'program', 'award'])
              : r.pick(['report', 'search-http', 'harvest-oaipmh']),
      group: r.chance(0.99) ? dataSources[ds]!.title : null,
      ds,
      status: r.chance(0.85) ? 'PUBLISHED' : r.pick(['DRAFT', 'SUBMITTED_FOR_ASSESSMENT', 'APPROVED']),
      title: hub || r.chance(0.98) ? title : null,
      description: hub || r.chance(0.95) ? `${title}. Collected by ${dataSources[ds]!.title} researchers studying ${topic} across the ${place}.` : null,
      rights: r.chance(0.88) ? r.pick(['CC-BY 4.0', 'CC-BY-NC 4.0', 'Open access', 'Contact the custodian']) : null,
      accessPolicy: cls === 'service' && r.chance(0.7) ? 'Open' : null,
      location: r.chance(0.92) ? `${place}, Australia` : null,
      electronic: r.chance(cls === 'service' ? 0.85 : 0.4) ? `https://data.example.org/${dsKey}/${cls}/${n}` : null,
      identifiers: r.chance(0.8) ? [`10.${4000 + r.int(999)}/${cls}.${ds}.${n}`] : [],
      subjects: r.chance(0.88) ? [r.pick(SUBJECTS), topic] : [],
      dates: cls === 'collection' && r.chance(0.8) ? [`${1990 + r.int(35)}-0${1 + r.int(9)}-1${r.int(9)}`] : [],
      spatial: cls === 'collection' && r.chance(0.7) ? place : null,
      temporal: cls === 'collection' && r.chance(0.5) ? `${1990 + r.int(20)}/${2010 + r.int(15)}` : null,
      citation: cls === 'collection' && r.chance(0.75) ? `${r.pick(FAMILY)} et al. (${2000 + r.int(25)}). ${title}.` : null,
      gold: r.chance(0.004),
    };
    const kept: SeedRecord = { key: rec.key, class: cls, ds };
    records.push(kept);
    byClass[cls].push(kept);
    return rec;
  };
  return make;
}

/** Hubs related to many collections, then each record's usual relations, then some to keys not in the registry. */
function* generateRelations({ r, records, byClass, hubs, hubSize }: RegistryPlan): Generator<GenRelation> {
  // Hubs first, so hub collections get no other activity or party.
  const taken = new Set<SeedRecord>();
  const collections = byClass.collection;
  for (const hub of hubs) {
    const type = hub.class === 'activity' ? 'isOutputOf' : 'isManagedBy';
    let linked = 0;
    for (let i = 0; linked < hubSize && i < collections.length * 2; i++) {
      const c = collections[r.int(collections.length)]!;
      if (taken.has(c)) continue;
      taken.add(c);
      yield [c, hub.key, type];
      linked++;
    }
    if (hub.class === 'activity') yield [hub, r.pick(byClass.party).key, 'hasPrincipalInvestigator'];
  }
  const hubSet = new Set(hubs);
  const candidates = new Map<string, SeedRecord[]>();
  const candidatesOf = (cls: RecordClass, ds?: number) => {
    const k = `${cls}/${ds ?? '*'}`;
    if (!candidates.has(k))
      candidates.set(
        k,
        byClass[cls].filter((x) => !hubSet.has(x) && (ds === undefined || x.ds === ds)),
      );
    return candidates.get(k)!;
  };
  // Mostly within the record's data source; `cross` of the time anywhere in the registry.
  const pickLocal = (cls: RecordClass, ds: number, cross: number) => {
    const local = candidatesOf(cls, ds);
    const from = r.chance(cross) || local.length === 0 ? candidatesOf(cls) : local;
    return from.length ? r.pick(from) : undefined;
  };
  for (const rec of records) {
    if (hubSet.has(rec)) continue;
    const own: GenRelation[] = [];
    const add = (cls: RecordClass, p: number, type: string, cross = 0.1) => {
      if (!r.chance(p)) return;
      const target = pickLocal(cls, rec.ds, cross);
      if (target && target !== rec) own.push([rec, target.key, type]);
    };
    if (rec.class === 'collection') {
      if (!taken.has(rec)) {
        add('party', 0.9, r.pick(['hasCollector', 'isManagedBy']));
        add('activity', 0.8, 'isOutputOf');
      } else {
        add('party', 0.5, 'hasCollector');
      }
    } else if (rec.class === 'activity') {
      add('party', 0.9, 'hasPrincipalInvestigator');
      add('collection', 0.3, 'hasOutput');
    } else if (rec.class === 'party') {
      add('party', 0.2, 'isMemberOf', 0.3);
    } else {
      add('collection', 0.85, 'supports');
    }
    yield* own;
  }
  // A relation may point at a key not (yet) in the registry, as harvested RIF-CS does.
  for (let i = 0; i < Math.ceil(records.length / 200); i++) yield [r.pick(records), `external/unknown/${i}`, 'hasAssociationWith'];
}

/**
 * In one transaction: data sources, then records and relations streamed with COPY as they are
 * generated. Returns the new records' ids and the number of relations generated.
 */
async function writeRegistry(pool: Pool, plan: RegistryPlan): Promise<{ ids: number[]; relations: number }> {
  return withTransaction(pool, async (tx) => {
    // Upserted first: the rows stay locked to the commit, so a second seed of the same data sources
    // at once waits for this one and is then refused, instead of colliding on every key.
    const dsIds = await upsertDataSources(tx, plan.dataSources);
    await refuseFilledDataSources(tx, plan.dataSources);
    const { rows: before } = await tx.query<{ max: number }>('SELECT coalesce(max(id), 0)::bigint AS max FROM registry_objects');
    await copyRows(tx, `registry_objects (${RECORD_COLUMNS.join(', ')})`, recordRows(plan, dsIds));
    await tx.query('CREATE TEMP TABLE seed_relations (from_key text, to_key text, relation_type text) ON COMMIT DROP');
    const relations = await copyRows(tx, 'seed_relations', relationRows(plan));
    await tx.query(
      `INSERT INTO relations (from_id, to_key, relation_type)
       SELECT ro.id, s.to_key, s.relation_type FROM seed_relations s JOIN registry_objects ro ON ro.key = s.from_key
       ON CONFLICT DO NOTHING`,
    );
    const mine = 'SELECT id FROM registry_objects WHERE id > $1 AND data_source_id = ANY($2::int[])';
    // Statistics from before this load would plan the delete below as a loop within a loop (minutes
    // for 400,000 records): ANALYZE counts the transaction's own new rows.
    await tx.query('ANALYZE registry_objects, derived_invalidations');
    // The new records have no derived state yet, so nothing of theirs is invalidated: it is all computed next.
    await tx.query(`DELETE FROM derived_invalidations WHERE record_id IN (${mine})`, [before[0]!.max, dsIds]);
    const { rows } = await tx.query<{ id: number }>(`${mine} ORDER BY id`, [before[0]!.max, dsIds]);
    return { ids: rows.map((row) => row.id), relations };
  });
}

/** Generated keys are per data source: a second seed into the same data sources would collide on every key. */
async function refuseFilledDataSources(tx: PoolClient, dataSources: DataSourceSeed[]): Promise<void> {
  const { rows } = await tx.query<{ key: string }>(
    'SELECT ds.key FROM data_sources ds WHERE ds.key = ANY($1::text[]) AND EXISTS (SELECT 1 FROM registry_objects ro WHERE ro.data_source_id = ds.id) ORDER BY ds.key',
    [dataSources.map((d) => d.key)],
  );
  if (rows.length)
    throw new UserError(
      `data source ${rows.map((r) => JSON.stringify(r.key)).join(', ')} already holds records; seed other data sources with --prefix (e.g. --prefix more-)`,
      { field: 'prefix' },
    );
}

async function upsertDataSources(tx: PoolClient, dataSources: DataSourceSeed[]): Promise<number[]> {
  const ids: number[] = [];
  for (const ds of dataSources) {
    const { rows } = await tx.query<{ id: number }>(
      `INSERT INTO data_sources (key, title) VALUES ($1, $2)
       ON CONFLICT (key) DO UPDATE SET title = EXCLUDED.title RETURNING id`,
      [ds.key, ds.title],
    );
    ids.push(rows[0]!.id);
  }
  return ids;
}

const RECORD_COLUMNS = [
  'key',
  'class',
  'type',
  'group_name',
  'data_source_id',
  'status',
  'title',
  'description',
  'rights',
  'access_policy',
  'location_address',
  'electronic_address',
  'identifiers',
  'subjects',
  'dates',
  'spatial_coverage',
  'temporal_coverage',
  'citation_info',
  'gold_standard',
];

/** Each generated record as a row of RECORD_COLUMNS. */
function* recordRows(plan: RegistryPlan, dsIds: number[]): Generator<CopyValue[]> {
  for (const x of generateRecords(plan)) {
    yield [
      x.key,
      x.class,
      x.type,
      x.group,
      dsIds[x.ds]!,
      x.status,
      x.title,
      x.description,
      x.rights,
      x.accessPolicy,
      x.location,
      x.electronic,
      x.identifiers,
      x.subjects,
      x.dates,
      x.spatial,
      x.temporal,
      x.citation,
      x.gold,
    ];
  }
}

function* relationRows(plan: RegistryPlan): Generator<CopyValue[]> {
  for (const [from, toKey, type] of generateRelations(plan)) yield [from.key, toKey, type];
}

/** What the seed made, with each hub's related-record count as the registry counts it. */
async function summarise(pool: Pool, { dataSources, records, hubs }: RegistryPlan, relations: number): Promise<SeedSummary> {
  const related = async (key: string) =>
    (
      await pool.query<{ n: number }>(
        'SELECT count(DISTINCT related_id)::int AS n FROM registry_objects ro, related_records(ro.id, ro.key) WHERE ro.key = $1',
        [key],
      )
    ).rows[0]!.n;
  return {
    dataSources: dataSources.map((d) => d.key),
    records: records.length,
    relations,
    hubs: await Promise.all(hubs.map(async (h) => ({ key: h.key, class: h.class, related: await related(h.key) }))),
  };
}

/**
 * Computes quality, index entry and cache of the given records, a batch at a time, `parallel`
 * batches at once (PostgreSQL does most of the work: one connection keeps one core busy).
 */
export async function rebuildDerived(pool: Pool, ids: readonly number[], { batch = 1000, parallel = 2 } = {}): Promise<void> {
  let next = 0;
  const rebuildBatches = async () => {
    for (let i = next; i < ids.length; i = next) {
      next += batch;
      const chunk = ids.slice(i, i + batch);
      await recheckQuality(pool, chunk);
      await reindexRecords(pool, chunk);
      await regenerateCache(pool, chunk);
    }
  };
  await Promise.all(Array.from({ length: parallel }, rebuildBatches));
}

/** True when the registry has no records yet. */
export async function isRegistryEmpty(db: Queryable): Promise<boolean> {
  const { rows } = await db.query('SELECT 1 FROM registry_objects LIMIT 1');
  return rows.length === 0;
}
