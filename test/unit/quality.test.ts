import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { assessQuality, QUALITY_RULES, type QualityInput } from '../../src/registry/quality.ts';
import type { RecordClass } from '../../src/shared.ts';

/** A record of the given class that passes every check that applies to it. */
function complete(cls: RecordClass, overrides: Partial<QualityInput> = {}): QualityInput {
  return {
    key: `test/${cls}/1`,
    class: cls,
    type: cls === 'collection' ? 'dataset' : 'project',
    group: 'Test Group',
    title: 'A title',
    description: 'A description',
    rights: 'CC-BY 4.0',
    accessPolicy: 'Open',
    locationAddress: 'Canberra',
    electronicAddress: 'https://example.org',
    identifiers: ['10.1234/x'],
    subjects: ['0401'],
    dates: ['2020-01-01'],
    spatialCoverage: 'Tasmania',
    temporalCoverage: null,
    citationInfo: 'Someone (2020)',
    goldStandard: false,
    ...overrides,
  };
}

const FULL_RELATED: Record<RecordClass, RecordClass[]> = {
  collection: ['party', 'activity'],
  party: ['collection'],
  activity: ['party'],
  service: ['collection'],
};

describe('quality levels', () => {
  for (const cls of ['collection', 'party', 'activity', 'service'] as const) {
    it(`a ${cls} that passes every check is level 3`, () => {
      const r = assessQuality(complete(cls), FULL_RELATED[cls]);
      assert.equal(r.level, 3);
      assert.ok(r.checks.every((c) => c.passed));
    });
  }

  it('a missing key or group (level-1 checks) gives level 0', () => {
    assert.equal(assessQuality(complete('party', { group: null }), FULL_RELATED.party).level, 0);
    assert.equal(assessQuality(complete('party', { key: '' }), FULL_RELATED.party).level, 0);
  });

  it('a collection without a type is level 0; other classes need no type', () => {
    assert.equal(assessQuality(complete('collection', { type: null }), FULL_RELATED.collection).level, 0);
    assert.equal(assessQuality(complete('party', { type: null }), FULL_RELATED.party).level, 3);
  });

  it('a failing level-2 check gives level 1', () => {
    assert.equal(assessQuality(complete('collection', { title: null }), FULL_RELATED.collection).level, 1);
    assert.equal(assessQuality(complete('collection', { description: '   ' }), FULL_RELATED.collection).level, 1);
    assert.equal(assessQuality(complete('collection', { rights: null }), FULL_RELATED.collection).level, 1);
    assert.equal(assessQuality(complete('collection', { locationAddress: null, electronicAddress: null }), FULL_RELATED.collection).level, 1);
  });

  it('a failing level-3 check gives level 2', () => {
    assert.equal(assessQuality(complete('collection', { identifiers: [] }), FULL_RELATED.collection).level, 2);
    assert.equal(assessQuality(complete('collection', { spatialCoverage: null, temporalCoverage: null }), FULL_RELATED.collection).level, 2);
    assert.equal(assessQuality(complete('service', { accessPolicy: null }), FULL_RELATED.service).level, 2);
  });

  it('the lowest failing level decides: level-1 and level-3 failures together give 0', () => {
    assert.equal(assessQuality(complete('collection', { group: null, identifiers: [] }), FULL_RELATED.collection).level, 0);
  });

  it('related classes decide the relation checks', () => {
    // Collection related to a party (level 2) and to an activity (level 3).
    assert.equal(assessQuality(complete('collection'), ['party']).level, 2);
    assert.equal(assessQuality(complete('collection'), ['activity']).level, 1);
    assert.equal(assessQuality(complete('collection'), []).level, 1);
    // Activity related to a party; service to a collection (level 2); party to a collection (level 3).
    assert.equal(assessQuality(complete('activity'), []).level, 1);
    assert.equal(assessQuality(complete('service'), ['party']).level, 1);
    assert.equal(assessQuality(complete('party'), ['activity']).level, 2);
  });

  it('losing the related activity lowers a complete collection from 3 to 2 (what a deleted grant does)', () => {
    const before = assessQuality(complete('collection'), ['party', 'activity']).level;
    const after = assessQuality(complete('collection'), ['party']).level;
    assert.deepEqual([before, after], [3, 2]);
  });

  it('the gold-standard flag sets level 5, even with failing checks', () => {
    assert.equal(assessQuality(complete('collection', { goldStandard: true }), FULL_RELATED.collection).level, 5);
    assert.equal(assessQuality(complete('collection', { goldStandard: true, group: null }), []).level, 5);
  });

  it('the report lists each applicable check with its level and severity', () => {
    const r = assessQuality(complete('service', { electronicAddress: null }), ['collection']);
    const ids = r.checks.map((c) => c.id);
    assert.ok(!ids.includes('type'), 'collection-only checks are not applied to a service');
    const failing = r.checks.filter((c) => !c.passed);
    assert.deepEqual(
      failing.map((c) => [c.id, c.level, c.severity]),
      [['electronic-address', 3, 'warning']],
    );
    assert.ok(r.checks.filter((c) => c.level < 3).every((c) => c.severity === 'error'));
  });

  it('is pure: the same input gives the same report', () => {
    const input = complete('collection', { subjects: [] });
    assert.deepEqual(assessQuality(input, ['party']), assessQuality(structuredClone(input), ['party']));
  });

  it('every rule has a unique id and a message', () => {
    const ids = QUALITY_RULES.map((r) => r.id);
    assert.equal(new Set(ids).size, ids.length);
    assert.ok(QUALITY_RULES.every((r) => r.message.length > 10));
  });
});
