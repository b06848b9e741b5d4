/**
 * Determinism guard: every committed history (test/histories, recorded by
 * `npm run record-histories`) must replay against the current workflow code.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Worker } from '@temporalio/worker';
import { workflowBundle } from '../helpers.ts';

const DIR = path.join(import.meta.dirname, '..', 'histories');
// Subfolders keep histories of earlier workflow versions (v1/: registryTask before its
// local-admin-activities-and-memo patch, deleteRecord and registryOperation before their
// coalesced-follow-up patch; v3/: registryTask before its first-look-before-local-activities
// patch): executions of every version must still replay.
const files = (fs.readdirSync(DIR, { recursive: true }) as string[]).filter((f) => f.endsWith('.json')).sort();

describe('workflow histories replay on the current code', () => {
  it('has recorded histories to replay', () => assert.ok(files.length >= 2));
  for (const file of files) {
    it(`replays ${file}`, async () => {
      const history = JSON.parse(fs.readFileSync(path.join(DIR, file), 'utf8'));
      await Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, history, file);
    });
  }
});
