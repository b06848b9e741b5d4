/** Workflow ids made from registry keys fit the server's 1,000-byte limit and stay one per key. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { boundedWorkflowId, coalescerWorkflowId, deleteRecordWorkflowId, MAX_WORKFLOW_ID_BYTES, MAX_WORKFLOW_ID_CHARS } from '../../src/client/workflow-ids.ts';
import { MAX_KEY_LENGTH } from '../../src/shared.ts';

describe('workflow ids from keys', () => {
  it('keep an id the server takes as it is', () => {
    assert.equal(deleteRecordWorkflowId('ds/record-1'), 'delete-record:ds/record-1');
    assert.equal(coalescerWorkflowId('ds', 'queue-2'), 'followup:queue-2:ds');
    const exactly = 'x'.repeat(MAX_WORKFLOW_ID_CHARS);
    assert.equal(boundedWorkflowId(exactly), exactly);
    assert.notEqual(boundedWorkflowId(`${exactly}x`), `${exactly}x`);
  });

  it('shorten a longer one to at most 255 characters and 1,000 bytes of whole characters, ending with a digest of the whole', () => {
    for (const char of ['鍵', '😀', 'é', 'k']) {
      const key = char.repeat(MAX_KEY_LENGTH / char.length);
      const id = deleteRecordWorkflowId(key, 'a-task-queue-of-some-length');
      assert.ok(Buffer.byteLength(id) <= MAX_WORKFLOW_ID_BYTES, `${char}: ${Buffer.byteLength(id)} bytes`);
      assert.ok([...id].length <= MAX_WORKFLOW_ID_CHARS, `${char}: ${[...id].length} characters`);
      assert.match(id, /^delete-record:a-task-queue-of-some-length:.+@[0-9a-f]{32}$/u);
      // No character cut in half: the id survives a round trip through UTF-8.
      assert.equal(Buffer.from(id).toString(), id);
      assert.equal(deleteRecordWorkflowId(key, 'a-task-queue-of-some-length'), id, 'the same key gives the same id');
    }
  });

  it('give two long keys that differ only at the end two ids', () => {
    const base = '鍵'.repeat(MAX_KEY_LENGTH - 1);
    assert.notEqual(deleteRecordWorkflowId(`${base}a`), deleteRecordWorkflowId(`${base}b`));
    assert.notEqual(coalescerWorkflowId(`${'源'.repeat(254)}a`, 'q'.repeat(255)), coalescerWorkflowId(`${'源'.repeat(254)}b`, 'q'.repeat(255)));
  });
});
