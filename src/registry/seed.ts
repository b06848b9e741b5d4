/**
 * Demo-registry generator: realistic records of the four classes over several data sources,
 * relations within and across data sources, and hub records with many related records.
 * Deterministic for a given seed, so tests and benchmarks can rebuild the same registry.
 */
import type { Logger } from 'pino';
import { withTransaction, type Pool, type Queryable } from '../db/pool.ts';
import type { RecordClass } from '../shared.ts';
import { recheckQuality, regenerateCache, reindexRecords } from './derived.ts';

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

/** Small, fast, seedable PRNG (mulberry32): the same seed gives the same registry. */
function rng(seed: number) {
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
/** [from, toKey, type]: a relation to a key, which may not be in the registry. */
type GenRelation = [GenRecord, string, string];
interface GeneratedRegistry {
  dataSources: DataSourceSeed[];
  records: GenRecord[];
  hubs: GenRecord[];
  relations: GenRelation[];
}

/** Creates data sources, records and relations, then computes every record's derived state. */
export async function seedRegistry(pool: Pool, opts: SeedOptions, logger?: Logger): Promise<SeedSummary> {
  const registry = generateRegistry(opts);
  const ids = await writeRegistry(pool, registry);
  logger?.info({ records: registry.records.length, relations: registry.relations.length }, 'records written; computing quality, index and cache');
  await rebuildDerived(pool, ids);
  return summarise(pool, registry);
}

/** The registry the seed makes, without I/O: the same seed always makes the same registry. */
function generateRegistry(opts: SeedOptions): GeneratedRegistry {
  const r = rng(opts.seed ?? 42);
  const prefix = opts.prefix ?? '';
  const hubCount = opts.hubs ?? Math.max(1, Math.min(5, Math.round(opts.records / 5000)));
  const hubSize = opts.hubSize ?? Math.max(10, Math.min(5000, Math.round(opts.records * 0.1)));

  const dataSources = Array.from({ length: opts.dataSources }, (_, i) => {
    const [key, title] = INSTITUTIONS[i % INSTITUTIONS.length]!;
    const round = Math.floor(i / INSTITUTIONS.length);
    return { key: `${prefix}${key}${round ? `-${round + 1}` : ''}`, title: round ? `${title} (${round + 1})` : title };
  });

  const { records, byClass, make } = recordMaker(r, dataSources);

  const hubs: GenRecord[] = [];
  for (let h = 0; h < hubCount; h++) hubs.push(make(h % 2 === 0 ? 'activity' : 'party', h % opts.dataSources, true));
  const classes: [RecordClass, number][] = [
    ['collection', 0.6],
    ['party', 0.2],
    ['activity', 0.12],
    ['service', 0.08],
  ];
  while (records.length < opts.records) {
    const ds = r.int(opts.dataSources);
    let x = r.next();
    const cls = classes.find(([, p]) => (x -= p) < 0)?.[0] ?? 'collection';
    make(cls, ds);
  }

  return { dataSources, records, hubs, relations: generateRelations(r, records, byClass, hubs, hubSize) };
}

/** Makes records of a class in a data source, with the fields a harvest would bring (some missing). */
function recordMaker(r: Rng, dataSources: DataSourceSeed[]) {
  const byClass: Record<RecordClass, GenRecord[]> = { collection: [], party: [], activity: [], service: [] };
  const records: GenRecord[] = [];
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
    records.push(rec);
    byClass[cls].push(rec);
    return rec;
  };
  return { records, byClass, make };
}

/** Hubs related to many collections, then each record's usual relations, then some to keys not in the registry. */
function generateRelations(r: Rng, records: GenRecord[], byClass: Record<RecordClass, GenRecord[]>, hubs: GenRecord[], hubSize: number): GenRelation[] {
  // Relations: [from, toKey, type]. Hubs first, so hub collections get no other activity or party.
  const relations: GenRelation[] = [];
  const taken = new Set<GenRecord>();
  const collections = byClass.collection;
  for (const hub of hubs) {
    const type = hub.class === 'activity' ? 'isOutputOf' : 'isManagedBy';
    let linked = 0;
    for (let i = 0; linked < hubSize && i < collections.length * 2; i++) {
      const c = collections[r.int(collections.length)]!;
      if (taken.has(c)) continue;
      taken.add(c);
      relations.push([c, hub.key, type]);
      linked++;
    }
    if (hub.class === 'activity') relations.push([hub, r.pick(byClass.party).key, 'hasPrincipalInvestigator']);
  }
  const hubSet = new Set(hubs);
  const candidates = new Map<string, GenRecord[]>();
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
    const add = (cls: RecordClass, p: number, type: string, cross = 0.1) => {
      if (!r.chance(p)) return;
      const target = pickLocal(cls, rec.ds, cross);
      if (target && target !== rec) relations.push([rec, target.key, type]);
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
  }
  // A relation may point at a key not (yet) in the registry, as harvested RIF-CS does.
  for (let i = 0; i < Math.ceil(records.length / 200); i++) relations.push([r.pick(records), `external/unknown/${i}`, 'hasAssociationWith']);

  return relations;
}

/** Writes data sources, records (2,000 a statement) and relations (5,000 a statement) in one transaction; the records' ids. */
async function writeRegistry(pool: Pool, { dataSources, records, relations }: GeneratedRegistry): Promise<number[]> {
  return withTransaction(pool, async (tx) => {
    const dsIds: number[] = [];
    for (const ds of dataSources) {
      const { rows } = await tx.query<{ id: number }>(
        `INSERT INTO data_sources (key, title) VALUES ($1, $2)
         ON CONFLICT (key) DO UPDATE SET title = EXCLUDED.title RETURNING id`,
        [ds.key, ds.title],
      );
      dsIds.push(rows[0]!.id);
    }
    const idOf = new Map<string, number>();
    for (let i = 0; i < records.length; i += 2000) {
      const chunk = records.slice(i, i + 2000);
      const col = <K extends keyof GenRecord>(k: K) => chunk.map((x) => x[k]);
      const { rows } = await tx.query<{ id: number; key: string }>(
        `INSERT INTO registry_objects (key, class, type, group_name, data_source_id, status, title, description, rights,
                access_policy, location_address, electronic_address, identifiers, subjects, dates,
                spatial_coverage, temporal_coverage, citation_info, gold_standard)
         SELECT u.key, u.class::record_class, u.type, u.grp, u.ds, u.status::record_status, u.title, u.description, u.rights,
                u.access_policy, u.location, u.electronic, string_to_array(u.identifiers, '|'), string_to_array(u.subjects, '|'),
                string_to_array(u.dates, '|'), u.spatial, u.temporal, u.citation, u.gold
           FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[], $6::text[], $7::text[], $8::text[], $9::text[],
                       $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::text[], $16::text[], $17::text[],
                       $18::text[], $19::boolean[])
                AS u(key, class, type, grp, ds, status, title, description, rights, access_policy, location, electronic,
                     identifiers, subjects, dates, spatial, temporal, citation, gold)
         RETURNING id, key`,
        [
          col('key'),
          col('class'),
          col('type'),
          col('group'),
          chunk.map((x) => dsIds[x.ds]),
          col('status'),
          col('title'),
          col('description'),
          col('rights'),
          col('accessPolicy'),
          col('location'),
          col('electronic'),
          chunk.map((x) => x.identifiers.join('|')),
          chunk.map((x) => x.subjects.join('|')),
          chunk.map((x) => x.dates.join('|')),
          col('spatial'),
          col('temporal'),
          col('citation'),
          col('gold'),
        ],
      );
      for (const row of rows) idOf.set(row.key, row.id);
    }
    for (let i = 0; i < relations.length; i += 5000) {
      const chunk = relations.slice(i, i + 5000);
      await tx.query(
        `INSERT INTO relations (from_id, to_key, relation_type)
         SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[]) ON CONFLICT DO NOTHING`,
        [chunk.map(([f]) => idOf.get(f.key)), chunk.map(([, t]) => t), chunk.map(([, , type]) => type)],
      );
    }
    return [...idOf.values()];
  });
}

/** What the seed made, with each hub's related-record count as the registry counts it. */
async function summarise(pool: Pool, { dataSources, records, relations, hubs }: GeneratedRegistry): Promise<SeedSummary> {
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
    relations: relations.length,
    hubs: await Promise.all(hubs.map(async (h) => ({ key: h.key, class: h.class, related: await related(h.key) }))),
  };
}

/** Computes quality, index entry and cache of the given records, 1,000 at a time. */
export async function rebuildDerived(pool: Pool, ids: readonly number[], batch = 1000): Promise<void> {
  for (let i = 0; i < ids.length; i += batch) {
    const chunk = ids.slice(i, i + batch);
    await recheckQuality(pool, chunk);
    await reindexRecords(pool, chunk);
    await regenerateCache(pool, chunk);
  }
}

/** True when the registry has no records yet. */
export async function isRegistryEmpty(db: Queryable): Promise<boolean> {
  const { rows } = await db.query('SELECT 1 FROM registry_objects LIMIT 1');
  return rows.length === 0;
}
