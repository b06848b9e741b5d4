/**
 * Quality levels of registry objects, after the ANDS registry's rules: a pure function of a
 * record's own fields and the classes of the records related to it (in both directions).
 *
 * level = (lowest level with a failing check) - 1, or 3 when every check passes;
 * 0 when a level-1 check fails; the gold-standard flag makes it 5.
 */
import type { RecordClass } from '../shared.ts';

export interface QualityInput {
  key: string | null;
  class: RecordClass;
  type: string | null;
  group: string | null;
  title: string | null;
  description: string | null;
  rights: string | null;
  accessPolicy: string | null;
  locationAddress: string | null;
  electronicAddress: string | null;
  identifiers: string[];
  subjects: string[];
  dates: string[];
  spatialCoverage: string | null;
  temporalCoverage: string | null;
  citationInfo: string | null;
  goldStandard: boolean;
}

export interface QualityCheck {
  id: string;
  level: 1 | 2 | 3;
  /** Level 1 and 2 failures are errors (they cap the level); level 3 failures are warnings. */
  severity: 'error' | 'warning';
  passed: boolean;
  message: string;
}

export interface QualityReport {
  level: 0 | 1 | 2 | 3 | 5;
  goldStandard: boolean;
  checks: QualityCheck[];
}

type Rule = {
  id: string;
  level: 1 | 2 | 3;
  appliesTo: readonly RecordClass[] | 'all';
  message: string;
  test: (r: QualityInput, related: ReadonlySet<RecordClass>) => boolean;
};

const present = (s: string | null | undefined): boolean => typeof s === 'string' && s.trim() !== '';
const ALL = 'all' as const;

/** The rules, in report order. Messages say what is missing. */
export const QUALITY_RULES: readonly Rule[] = [
  { id: 'key', level: 1, appliesTo: ALL, message: 'The record must have a key.', test: (r) => present(r.key) },
  { id: 'group', level: 1, appliesTo: ALL, message: 'The record must have a group.', test: (r) => present(r.group) },
  { id: 'type', level: 1, appliesTo: ['collection'], message: 'A collection must have a type.', test: (r) => present(r.type) },

  { id: 'name', level: 2, appliesTo: ALL, message: 'The record must have a primary name.', test: (r) => present(r.title) },
  { id: 'description', level: 2, appliesTo: ALL, message: 'The record must have a description.', test: (r) => present(r.description) },
  {
    id: 'related-party',
    level: 2,
    appliesTo: ['collection', 'activity'],
    message: 'The record must be related to a party.',
    test: (_r, rel) => rel.has('party'),
  },
  { id: 'rights', level: 2, appliesTo: ['collection'], message: 'A collection must state its rights or access rights.', test: (r) => present(r.rights) },
  {
    id: 'location',
    level: 2,
    appliesTo: ['collection', 'party'],
    message: 'The record must have a location address.',
    test: (r) => present(r.locationAddress) || present(r.electronicAddress),
  },
  {
    id: 'related-collection',
    level: 2,
    appliesTo: ['service'],
    message: 'A service must be related to a collection.',
    test: (_r, rel) => rel.has('collection'),
  },

  { id: 'identifier', level: 3, appliesTo: ALL, message: 'The record should have an identifier.', test: (r) => r.identifiers.some(present) },
  {
    id: 'subject',
    level: 3,
    appliesTo: ['collection', 'party', 'activity'],
    message: 'The record should have a subject.',
    test: (r) => r.subjects.some(present),
  },
  { id: 'dates', level: 3, appliesTo: ['collection'], message: 'A collection should have dates.', test: (r) => r.dates.some(present) },
  {
    id: 'related-activity',
    level: 3,
    appliesTo: ['collection'],
    message: 'A collection should be related to an activity.',
    test: (_r, rel) => rel.has('activity'),
  },
  {
    id: 'coverage',
    level: 3,
    appliesTo: ['collection'],
    message: 'A collection should have spatial or temporal coverage.',
    test: (r) => present(r.spatialCoverage) || present(r.temporalCoverage),
  },
  { id: 'citation', level: 3, appliesTo: ['collection'], message: 'A collection should have citation information.', test: (r) => present(r.citationInfo) },
  {
    id: 'party-related-collection',
    level: 3,
    appliesTo: ['party'],
    message: 'A party should be related to a collection.',
    test: (_r, rel) => rel.has('collection'),
  },
  {
    id: 'electronic-address',
    level: 3,
    appliesTo: ['service'],
    message: 'A service should have an electronic address.',
    test: (r) => present(r.electronicAddress),
  },
  { id: 'access-policy', level: 3, appliesTo: ['service'], message: 'A service should have an access policy.', test: (r) => present(r.accessPolicy) },
];

/** Computes a record's quality level and report. Pure: same input, same output. */
export function assessQuality(record: QualityInput, relatedClasses: Iterable<RecordClass>): QualityReport {
  const related = new Set(relatedClasses);
  const checks: QualityCheck[] = [];
  let lowestFailing = 4;
  for (const rule of QUALITY_RULES) {
    if (rule.appliesTo !== ALL && !rule.appliesTo.includes(record.class)) continue;
    const passed = rule.test(record, related);
    if (!passed) lowestFailing = Math.min(lowestFailing, rule.level);
    checks.push({
      id: rule.id,
      level: rule.level,
      severity: rule.level === 3 ? 'warning' : 'error',
      passed,
      message: rule.message,
    });
  }
  const computed = (lowestFailing - 1) as 0 | 1 | 2 | 3;
  return { level: record.goldStandard ? 5 : computed, goldStandard: record.goldStandard, checks };
}
