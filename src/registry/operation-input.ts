/** Validation of registry operations (pure: the client and the workflow both run it). */
import { MAX_IMPORT_BATCH, MAX_IMPORT_BYTES, RECORD_CLASSES, RECORD_STATUSES, checkRecordKey, utf8Length, type RegistryOperation } from '../shared.ts';

const KINDS = ['DELETE_DRAFT', 'CHANGE_STATUS', 'IMPORT_RECORDS', 'CLEAR_DATA_SOURCE'];

/** Limits of a harvested record's fields: well inside what PostgreSQL indexes (a tsvector holds 1 MB). */
export const IMPORT_LIMITS = { textField: 65_536, arrayEntries: 1000, arrayEntry: 4000, relations: 10_000 };
const TEXT_FIELDS = [
  'type',
  'group',
  'title',
  'description',
  'rights',
  'accessPolicy',
  'locationAddress',
  'electronicAddress',
  'spatialCoverage',
  'temporalCoverage',
  'citationInfo',
] as const;
const ARRAY_FIELDS = ['identifiers', 'subjects', 'dates'] as const;

/** What PostgreSQL text refuses (a NUL) or what is past a limit, in one string value. */
function checkText(where: string, v: unknown, max: number): string | undefined {
  if (typeof v !== 'string') return `${where} must be a string, got ${v === null ? 'null' : typeof v}`;
  if (v.length > max) return `${where} is ${v.length} characters long; at most ${max} are allowed`;
  if (v.includes('\u0000')) return `${where} contains a NUL character (\\u0000), which PostgreSQL text cannot hold`;
  return undefined;
}

/** Checks one harvested record's fields; returns what is wrong, naming the field. */
function checkHarvestedRecord(i: number, r: Record<string, unknown>): string | undefined {
  const k = checkRecordKey(r?.key);
  if (k) return `records[${i}]: ${k}`;
  if (!RECORD_CLASSES.includes(r.class as never)) return `records[${i}].class ${JSON.stringify(r.class)} is not one of ${RECORD_CLASSES.join(', ')}`;
  if (r.status !== undefined && !RECORD_STATUSES.includes(r.status as never))
    return `records[${i}].status ${JSON.stringify(r.status)} is not one of ${RECORD_STATUSES.join(', ')}`;
  for (const f of TEXT_FIELDS) {
    const bad = r[f] === undefined || r[f] === null ? undefined : checkText(`records[${i}].${f}`, r[f], IMPORT_LIMITS.textField);
    if (bad) return bad;
  }
  for (const f of ARRAY_FIELDS) {
    if (r[f] === undefined) continue;
    if (!Array.isArray(r[f])) return `records[${i}].${f} must be an array of strings`;
    const values = r[f] as unknown[];
    if (values.length > IMPORT_LIMITS.arrayEntries) return `records[${i}].${f} has ${values.length} entries; at most ${IMPORT_LIMITS.arrayEntries} are allowed`;
    for (const [j, v] of values.entries()) {
      const bad = checkText(`records[${i}].${f}[${j}]`, v, IMPORT_LIMITS.arrayEntry);
      if (bad) return bad;
    }
  }
  if (r.relations !== undefined) {
    if (!Array.isArray(r.relations)) return `records[${i}].relations must be an array of { key, type }`;
    if (r.relations.length > IMPORT_LIMITS.relations)
      return `records[${i}].relations has ${r.relations.length} entries; at most ${IMPORT_LIMITS.relations} are allowed`;
    for (const [j, rel] of (r.relations as Record<string, unknown>[]).entries()) {
      const rk = checkRecordKey(rel?.key);
      if (rk) return `records[${i}].relations[${j}]: ${rk}`;
      if (typeof rel.type !== 'string' || rel.type.trim() === '') return `records[${i}].relations[${j}].type must be a relation type such as isOutputOf`;
      const bad = checkText(`records[${i}].relations[${j}].type`, rel.type, 255);
      if (bad) return bad;
    }
  }
  return undefined;
}

/** Returns what is wrong with an operation, naming the field and the allowed values, or undefined. */
export function checkRegistryOperation(op: unknown): string | undefined {
  if (typeof op !== 'object' || op === null) return 'operation must be an object';
  const o = op as Record<string, unknown>;
  if (!KINDS.includes(o.kind as string)) return `kind ${JSON.stringify(o.kind)} is not one of ${KINDS.join(', ')}`;
  const dsCheck = () =>
    typeof o.dataSourceKey !== 'string' || o.dataSourceKey.trim() === '' || o.dataSourceKey.length > 255
      ? `dataSourceKey ${JSON.stringify(o.dataSourceKey)} must be a non-empty string of at most 255 characters`
      : undefined;
  switch (o.kind as RegistryOperation['kind']) {
    case 'DELETE_DRAFT':
      return checkRecordKey(o.key);
    case 'CHANGE_STATUS':
      return (
        checkRecordKey(o.key) ??
        (RECORD_STATUSES.includes(o.to as never) ? undefined : `status ${JSON.stringify(o.to)} is not one of ${RECORD_STATUSES.join(', ')}`)
      );
    case 'CLEAR_DATA_SOURCE':
      return dsCheck();
    case 'IMPORT_RECORDS': {
      const bad = dsCheck();
      if (bad) return bad;
      if (!Array.isArray(o.records) || o.records.length === 0) return 'records must be a non-empty array';
      if (o.records.length > MAX_IMPORT_BATCH) return `records has ${o.records.length} entries; at most ${MAX_IMPORT_BATCH} per import batch`;
      const firstIndex = new Map<unknown, number>();
      for (const [i, r] of (o.records as Record<string, unknown>[]).entries()) {
        const bad = checkHarvestedRecord(i, r);
        if (bad) return bad;
        // One row per key: PostgreSQL refuses to upsert a key twice in one statement.
        const earlier = firstIndex.get(r.key);
        if (earlier !== undefined) return `records[${i}].key ${JSON.stringify(r.key)} repeats records[${earlier}].key; a batch names each record once`;
        firstIndex.set(r.key, i);
      }
      // Within what a Temporal payload carries (2 MB refused, 256 KB warned).
      const bytes = utf8Length(JSON.stringify(o.records));
      if (bytes > MAX_IMPORT_BYTES) return `records take ${bytes} bytes; at most ${MAX_IMPORT_BYTES} per import batch (split the batch)`;
      return undefined;
    }
  }
}
