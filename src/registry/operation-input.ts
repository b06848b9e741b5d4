/** Validation of registry operations (pure: the client and the workflow both run it). */
import { MAX_IMPORT_BATCH, RECORD_CLASSES, RECORD_STATUSES, checkRecordKey, type RegistryOperation } from '../shared.ts';

const KINDS = ['DELETE_DRAFT', 'CHANGE_STATUS', 'IMPORT_RECORDS', 'CLEAR_DATA_SOURCE'];

/** Returns what is wrong with an operation, naming the field and the allowed values, or undefined. */
export function checkRegistryOperation(op: unknown): string | undefined {
  if (typeof op !== 'object' || op === null) return 'operation must be an object';
  const o = op as Record<string, unknown>;
  if (!KINDS.includes(o.kind as string)) return `kind ${JSON.stringify(o.kind)} is not one of ${KINDS.join(', ')}`;
  const dsCheck = () =>
    typeof o.dataSourceKey !== 'string' || o.dataSourceKey.trim() === '' || o.dataSourceKey.length > 255 ? `dataSourceKey ${JSON.stringify(o.dataSourceKey)} must be a non-empty string of at most 255 characters` : undefined;
  switch (o.kind as RegistryOperation['kind']) {
    case 'DELETE_DRAFT':
      return checkRecordKey(o.key);
    case 'CHANGE_STATUS':
      return checkRecordKey(o.key) ?? (RECORD_STATUSES.includes(o.to as never) ? undefined : `status ${JSON.stringify(o.to)} is not one of ${RECORD_STATUSES.join(', ')}`);
    case 'CLEAR_DATA_SOURCE':
      return dsCheck();
    case 'IMPORT_RECORDS': {
      const bad = dsCheck();
      if (bad) return bad;
      if (!Array.isArray(o.records) || o.records.length === 0) return 'records must be a non-empty array';
      if (o.records.length > MAX_IMPORT_BATCH) return `records has ${o.records.length} entries; at most ${MAX_IMPORT_BATCH} per import batch`;
      for (const [i, r] of (o.records as Record<string, unknown>[]).entries()) {
        const k = checkRecordKey(r?.key);
        if (k) return `records[${i}]: ${k}`;
        if (!RECORD_CLASSES.includes(r.class as never)) return `records[${i}].class ${JSON.stringify(r.class)} is not one of ${RECORD_CLASSES.join(', ')}`;
        if (r.status !== undefined && !RECORD_STATUSES.includes(r.status as never)) return `records[${i}].status ${JSON.stringify(r.status)} is not one of ${RECORD_STATUSES.join(', ')}`;
        for (const f of ['identifiers', 'subjects', 'dates'] as const) {
          if (r[f] !== undefined && !(Array.isArray(r[f]) && (r[f] as unknown[]).every((x) => typeof x === 'string'))) return `records[${i}].${f} must be an array of strings`;
        }
        if (r.relations !== undefined) {
          if (!Array.isArray(r.relations)) return `records[${i}].relations must be an array of { key, type }`;
          for (const [j, rel] of (r.relations as Record<string, unknown>[]).entries()) {
            const rk = checkRecordKey(rel?.key);
            if (rk) return `records[${i}].relations[${j}]: ${rk}`;
            if (typeof rel.type !== 'string' || rel.type.trim() === '') return `records[${i}].relations[${j}].type must be a relation type such as isOutputOf`;
          }
        }
      }
      return undefined;
    }
  }
}
